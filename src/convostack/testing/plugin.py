"""pytest plugin: `--stack-config` chooses what the integration tests talk to.

The same tests run against the app in-process (`library`, the default), against a
spawned `convostack serve` (`server[:PORT]`) or against any URL. Tests only ever see an
`openai.OpenAI` client (fixture `client`) and, for malformed input the client cannot
send, a raw HTTP client (fixture `http`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx2
import openai
import pytest

from convostack.testing.stack import Target, open_target


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


@pytest.fixture(scope="session")
def stack_target(request: pytest.FixtureRequest) -> Iterator[Target]:
    spec: str = request.config.getoption("--stack-config")
    db: str | None = request.config.getoption("--db")
    with open_target(spec, db) as target:
        yield target


@pytest.fixture(scope="session")
def http(stack_target: Target) -> Iterator[httpx2.Client]:
    with stack_target.http_client() as client:
        yield client


@pytest.fixture(scope="session")
def client(stack_target: Target, http: httpx2.Client) -> openai.OpenAI:
    api_key = os.environ.get("CONVOSTACK_TEST_API_KEY", "test-key")
    return openai.OpenAI(
        base_url=stack_target.base_url, api_key=api_key, http_client=http, max_retries=0
    )
