"""pytest plugin: `--stack-config` chooses what the integration tests talk to,
`--inference-mode` whether model output is replayed from recordings or produced live,
the model options which models the tests use (parametrising them), `--suite` and
`--setup` named sets of tests and of defaults (testing/suites.py), `--env` variables.

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
from typing import Any

import httpx2
import openai
import pytest

from convostack.providers.recording import MODES, TEST_ID_HEADER
from convostack.testing.stack import Target, open_target
from convostack.testing.suites import SETUPS, SUITES, Setup

DEFAULT_TEXT_MODEL = "smollm2-135m-instruct"
DEFAULT_EMBEDDING_MODEL = "all-minilm-l6-v2"


@dataclass
class _CurrentTest:
    nodeid: str | None = None


_current_key = pytest.StashKey[_CurrentTest]()
_options_key = pytest.StashKey["Options"]()


# The model options: each a comma-separated list, its fixture, and its variable.
MODEL_OPTIONS: dict[str, str] = {
    "text_model": "text_model_id",
    "vision_model": "vision_model_id",
    "embedding_model": "embedding_model_id",
    "judge_model": "judge_model_id",
    "safety_shield": "safety_shield_id",
    "embedding_dimension": "embedding_dimension",
}
_MODEL_HELP = {
    "text_model": "text generation",
    "vision_model": "image input",
    "embedding_model": "embeddings",
    "judge_model": "a model grading other answers",
    "safety_shield": "a moderation model",
    "embedding_dimension": "the embedding size (with --embedding-model)",
}
_GROUP = "Custom options (convostack)"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("convostack", _GROUP)
    group.addoption(
        "--stack-config",
        default=os.environ.get("CONVOSTACK_TEST_STACK_CONFIG", "library"),
        help="What the tests talk to: library (in-process, default); a config file or a "
        "preset (in-process, e.g. starter); api=provider pairs (in-process, ad hoc, e.g. "
        "inference=fake,storage=sqlite); server, server:PORT, server:CONFIG or "
        "server:CONFIG:PORT (spawn convostack serve, or reuse the one on PORT); or a URL.",
    )
    group.addoption(
        "--db",
        default=os.environ.get("CONVOSTACK_TEST_DB"),
        help="Database URL for library/server modes (default: a temp SQLite file).",
    )
    group.addoption(
        "--inference-mode",
        default=os.environ.get("CONVOSTACK_TEST_INFERENCE_MODE"),
        choices=MODES,
        help="replay (default: recorded model output, no model needed), record, "
        "record-if-missing, or live (the default with the fake upstream).",
    )
    group.addoption(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Set an environment variable for the run (and a spawned server); repeatable.",
    )
    for name, fixture in MODEL_OPTIONS.items():
        group.addoption(
            "--" + name.replace("_", "-"),
            default=os.environ.get(f"CONVOSTACK_TEST_{name.upper()}"),
            help=f"Comma-separated list for {_MODEL_HELP[name]} (fixture {fixture}); several "
            "parametrise the tests using it; none skips them.",
        )
    group.addoption(
        "--suite",
        choices=sorted(SUITES),
        help="Run one named set of tests (convostack.testing.suites.SUITES).",
    )
    group.addoption(
        "--setup",
        choices=sorted(SETUPS),
        help="Fill model options, settings and environment defaults for a kind of "
        "deployment (convostack.testing.suites.SETUPS); explicit flags win.",
    )


@dataclass(frozen=True)
class Options:
    """The test options as resolved: a flag (or its variable) over the --setup, over
    the --suite's setup, over the defaults."""

    models: dict[str, list[str]]
    env: dict[str, str]
    settings: dict[str, object]
    inference_mode: str


def resolve(config: pytest.Config) -> Options:
    setup_name = config.getoption("--setup")
    suite_name = config.getoption("--suite")
    if setup_name is None and suite_name is not None:
        setup_name = SUITES[suite_name].setup
    setup = SETUPS[setup_name] if setup_name else Setup("none")
    models: dict[str, list[str]] = {}
    for name in MODEL_OPTIONS:
        given = config.getoption("--" + name.replace("_", "-"))
        value = given if given is not None else setup.models.get(name)
        if value is None:  # the embedded models, which need nothing else
            value = {"text_model": DEFAULT_TEXT_MODEL,
                     "embedding_model": DEFAULT_EMBEDDING_MODEL}.get(name)  # fmt: skip
        models[name] = [v.strip() for v in (value or "").split(",") if v.strip()]
    env = dict(_pairs(config.getoption("--env")))
    mode = config.getoption("--inference-mode")
    if mode is None:
        spec: str = config.getoption("--stack-config")
        # The fake upstream is deterministic and instant: nothing to record or replay.
        mode = "live" if setup_name == "fake" or "inference=fake" in spec else "replay"
    return Options(models, {**setup.env, **env}, dict(setup.settings), mode)


def _pairs(values: list[str]) -> Iterator[tuple[str, str]]:
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise pytest.UsageError(f"--env {value!r}: expected KEY=VALUE")
        yield key, rest


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_current_key] = _CurrentTest()
    options = resolve(config)
    config.stash[_options_key] = options
    for key, value in options.env.items():
        # --env is explicit: it wins; a setup's variables only fill what is unset.
        if key in dict(_pairs(config.getoption("--env"))) or key not in os.environ:
            os.environ[key] = value


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Several values of a model option parametrise the tests using its fixture; one
    value leaves the test's id unchanged (so its recordings stay where they are)."""
    options: Options = metafunc.config.stash[_options_key]
    for name, fixture in MODEL_OPTIONS.items():
        values = options.models[name]
        if fixture in metafunc.fixturenames and len(values) > 1:
            params = [int(v) for v in values] if name == "embedding_dimension" else values
            metafunc.parametrize(fixture, params, ids=values, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    name = config.getoption("--suite")
    if name is None:
        return
    suite = SUITES[name]
    roots = tuple(str(config.rootpath / root) for root in suite.roots)
    chosen: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        inside = str(item.path).startswith(roots)
        uses = not suite.fixtures or any(f in suite.fixtures for f in _fixtures(item))
        (chosen if inside and uses else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = chosen


def only_in_library_mode(config: pytest.Config, why: str) -> None:
    """Skip the test unless --stack-config is library: for tests that look inside this
    process, or start processes of their own (once is enough)."""
    if config.getoption("--stack-config") != "library":
        pytest.skip(why)


def inference_mode(config: pytest.Config) -> str:
    """--inference-mode as resolved (its default depends on the stack and setup)."""
    mode: str = config.stash[_options_key].inference_mode
    return mode


def _fixtures(item: pytest.Item) -> list[str]:
    names: list[str] = getattr(item, "fixturenames", [])
    return names


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
    options: Options = request.config.stash[_options_key]
    settings = {
        **options.settings,
        "inference_mode": options.inference_mode,
        "recording_dir": str(recording_dir(request.config)),
    }
    with _usage_errors(), open_target(spec, db, settings, options.env) as target:
        yield target


@contextlib.contextmanager
def _usage_errors() -> Iterator[None]:
    """A --stack-config that names nothing known, or lacks a variable: one clear line."""
    try:
        yield
    except ValueError as exc:
        pytest.exit(f"convostack test options: {exc}", returncode=4)


@contextlib.contextmanager
def configured_target(
    config: pytest.Config, settings: Mapping[str, object], db: str | None = None
) -> Iterator[Target]:
    """A convostack of the tests' own `settings`, in-process or spawned per
    --stack-config; skips the tests on a URL target, which keeps its own."""
    spec: str = config.getoption("--stack-config")
    if spec.startswith(("http://", "https://")):
        pytest.skip("these tests configure their own convostack; a URL target cannot be")
    env = config.stash[_options_key].env
    with _usage_errors(), open_target(spec, db, settings, env) as target:
        yield target


@contextlib.contextmanager
def configured_client(
    config: pytest.Config, settings: Mapping[str, object], db: str | None = None
) -> Iterator[openai.OpenAI]:
    """An `openai` client on `configured_target(config, settings, db)`."""
    with configured_target(config, settings, db) as target, target.http_client() as http:
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


def _model(request: pytest.FixtureRequest, name: str) -> str:
    """The one value of a model option (several are parametrised instead); skips the
    test when the option has none."""
    values = request.config.stash[_options_key].models[name]
    if not values:
        pytest.skip(f"no --{name.replace('_', '-')} given")
    return str(values[0])


def _model_fixture(name: str) -> Any:
    """The session fixture of one model option (MODEL_OPTIONS names it)."""

    @pytest.fixture(scope="session", name=MODEL_OPTIONS[name])
    def value(request: pytest.FixtureRequest) -> str | int:
        found = _model(request, name)
        return int(found) if name == "embedding_dimension" else found

    return value


text_model_id = _model_fixture("text_model")
vision_model_id = _model_fixture("vision_model")
embedding_model_id = _model_fixture("embedding_model")
judge_model_id = _model_fixture("judge_model")
safety_shield_id = _model_fixture("safety_shield")
embedding_dimension = _model_fixture("embedding_dimension")
