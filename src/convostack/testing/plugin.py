"""pytest plugin: `--stack-config` chooses what the integration tests talk to, and
`--inference-mode` whether model output is replayed from recordings or produced live.

The same tests run against the app in-process (`library`, the default), against a
spawned `convostack serve` (`server[:PORT]`) or against any URL. Tests only ever see an
`openai.OpenAI` client (fixture `client`) and, for malformed input the client cannot
send, a raw HTTP client (fixture `http`). Each request carries the running test's id in
a header, so that recordings are kept per test, in server mode too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx2
import openai
import pytest

from convostack.providers.recording import MODES, TEST_ID_HEADER
from convostack.testing.stack import Target, open_target

DEFAULT_TEXT_MODEL = "smollm2-135m-instruct"
DEFAULT_EMBEDDING_MODEL = "all-minilm-l6-v2"


@dataclass
class _CurrentTest:
    nodeid: str | None = None


_current_key = pytest.StashKey[_CurrentTest]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("convostack")
    group.addoption(
        "--stack-config",
        default=os.environ.get("CONVOSTACK_TEST_STACK_CONFIG", "library"),
        help="library (in-process, default), server[:PORT] (spawn convostack serve), "
        "or the URL of a running server.",
    )
    group.addoption(
        "--db",
        default=os.environ.get("CONVOSTACK_TEST_DB"),
        help="Database URL for library/server modes (default: a temp SQLite file).",
    )
    group.addoption(
        "--inference-mode",
        default=os.environ.get("CONVOSTACK_TEST_INFERENCE_MODE", "replay"),
        choices=MODES,
        help="replay (default: recorded model output, no model needed), record, "
        "record-if-missing, or live.",
    )
    group.addoption(
        "--text-model",
        default=os.environ.get("CONVOSTACK_TEST_TEXT_MODEL", DEFAULT_TEXT_MODEL),
        help=f"Model id for text generation tests (default {DEFAULT_TEXT_MODEL}).",
    )
    group.addoption(
        "--embedding-model",
        default=os.environ.get("CONVOSTACK_TEST_EMBEDDING_MODEL", DEFAULT_EMBEDDING_MODEL),
        help=f"Model id for embedding tests (default {DEFAULT_EMBEDDING_MODEL}, the "
        "embedded one); an empty value skips them.",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_current_key] = _CurrentTest()


@pytest.fixture(autouse=True)
def _name_the_running_test(request: pytest.FixtureRequest) -> Iterator[None]:
    current = request.config.stash[_current_key]
    current.nodeid = request.node.nodeid
    yield
    current.nodeid = None


def recording_dir(config: pytest.Config) -> Path:
    configured = os.environ.get("CONVOSTACK_TEST_RECORDING_DIR")
    if configured:
        return Path(configured).resolve()
    return (config.rootpath / "tests" / "integration" / "recordings").resolve()


@pytest.fixture(scope="session")
def stack_target(request: pytest.FixtureRequest) -> Iterator[Target]:
    spec: str = request.config.getoption("--stack-config")
    db: str | None = request.config.getoption("--db")
    settings = {
        "inference_mode": request.config.getoption("--inference-mode"),
        "recording_dir": str(recording_dir(request.config)),
    }
    with open_target(spec, db, settings) as target:
        yield target


@contextlib.contextmanager
def configured_client(
    config: pytest.Config, settings: Mapping[str, object], db: str | None = None
) -> Iterator[openai.OpenAI]:
    """An `openai` client on a convostack of the tests' own `settings`, in-process or
    spawned per --stack-config; skips the tests on a URL target, which keeps its own."""
    spec: str = config.getoption("--stack-config")
    if spec.startswith(("http://", "https://")):
        pytest.skip("these tests configure their own convostack; a URL target cannot be")
    with open_target(spec, db, settings) as target, target.http_client() as http:
        yield openai.OpenAI(base_url=target.base_url, api_key="k", http_client=http, max_retries=0)


@pytest.fixture(scope="session")
def http(request: pytest.FixtureRequest, stack_target: Target) -> Iterator[httpx2.Client]:
    current = request.config.stash[_current_key]

    def name_test(outgoing: httpx2.Request) -> None:
        if current.nodeid:
            outgoing.headers[TEST_ID_HEADER] = current.nodeid

    with stack_target.http_client(event_hooks={"request": [name_test]}) as client:
        yield client


@pytest.fixture(scope="session")
def client(stack_target: Target, http: httpx2.Client) -> openai.OpenAI:
    api_key = os.environ.get("CONVOSTACK_TEST_API_KEY", "test-key")
    return openai.OpenAI(
        base_url=stack_target.base_url, api_key=api_key, http_client=http, max_retries=0
    )


@pytest.fixture(scope="session")
def text_model_id(request: pytest.FixtureRequest) -> str:
    model: str = request.config.getoption("--text-model")
    return model


@pytest.fixture(scope="session")
def embedding_model_id(request: pytest.FixtureRequest) -> str:
    model: str | None = request.config.getoption("--embedding-model")
    if not model:
        pytest.skip("no --embedding-model given")
    return model
