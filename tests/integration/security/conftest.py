"""The security and reliability tests run against a convostack of their own: API keys for
two principals (team-a holds two keys), small limits, and the fake upstream behind three
providers (a healthy one, one with a one-second timeout, one nobody listens at).

Clients: `client` (team-a), `client_a2` (team-a's second key), `client_b` (team-b), and
`http`, a raw client that sends no key unless a test adds one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import openai
import pytest

from convostack.auth import hash_key
from convostack.storage import sqlite_path
from convostack.testing.fake_upstream import fake_upstream_server
from convostack.testing.stack import Target, free_port, open_target
from convostack.testing.upstream import FAKE_MODEL, Upstream


@dataclass(frozen=True)
class Keys:
    a: str = "sk-sec-team-a-0123456789abcdef"
    a2: str = "sk-sec-team-a-second-fedcba9876"
    b: str = "sk-sec-team-b-0123456789abcdef"


KEYS = Keys()


@dataclass(frozen=True)
class Limits:
    """What the conftest configures; tests read the numbers from here."""

    max_body_bytes: int = 256 * 1024
    max_item_text_chars: int = 100_000
    max_items_per_conversation: int = 30
    max_tools: int = 4
    max_output_tokens: int = 1000
    provider_timeout: float = 1.0
    max_input_items: int = 40
    max_item_data_bytes: int = 150_000
    max_reference_bytes: int = 200_000


LIMITS = Limits()


@pytest.fixture(scope="package")
def keys() -> Keys:
    return KEYS


@pytest.fixture(scope="package")
def limits() -> Limits:
    return LIMITS


@pytest.fixture(scope="package")
def upstream() -> Iterator[Upstream]:
    with fake_upstream_server(models=[FAKE_MODEL]) as url:
        yield Upstream(url)


@pytest.fixture(autouse=True)
def _fresh_records(upstream: Upstream) -> None:
    upstream.reset()


def security_settings(upstream_url: str) -> dict[str, object]:
    """The configuration of the convostack under test (also used by spawned servers)."""
    return {
        "inference_mode": "live",
        "api_keys": [
            {"sha256": hash_key(KEYS.a), "principal": "team-a"},
            {"sha256": hash_key(KEYS.a2), "principal": "team-a"},
            {"sha256": hash_key(KEYS.b), "principal": "team-b"},
        ],
        "max_body_bytes": LIMITS.max_body_bytes,
        "max_item_text_chars": LIMITS.max_item_text_chars,
        "max_items_per_conversation": LIMITS.max_items_per_conversation,
        "max_tools": LIMITS.max_tools,
        "max_output_tokens": LIMITS.max_output_tokens,
        "max_input_items": LIMITS.max_input_items,
        "max_item_data_bytes": LIMITS.max_item_data_bytes,
        "max_reference_bytes": LIMITS.max_reference_bytes,
        "providers": [
            {"type": "openai_compat", "id": "fake", "base_url": upstream_url, "max_retries": 0},
            {"type": "openai_compat", "id": "slow", "base_url": upstream_url, "max_retries": 0,
             "models": ["slow-model"], "timeout": LIMITS.provider_timeout},
            {"type": "openai_compat", "id": "dead", "max_retries": 0, "models": ["dead-model"],
             "base_url": f"http://127.0.0.1:{free_port()}/v1"},
        ],
    }  # fmt: skip


@pytest.fixture(scope="package")
def settings(upstream: Upstream) -> dict[str, object]:
    return security_settings(upstream.url)


@pytest.fixture(scope="package")
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    given: str | None = request.config.getoption("--db")
    return given or f"sqlite:///{tmp_path_factory.mktemp('security') / 'security.db'}"


@pytest.fixture(scope="package")
def sqlite_file(database_url: str) -> Path:
    """The SQLite file of the convostack under test; skips on another database."""
    if "://" in database_url and not database_url.startswith("sqlite:"):
        pytest.skip("this test locks a SQLite file; the database under test is not SQLite")
    return sqlite_path(database_url)


@pytest.fixture(scope="package")
def stack_target(
    request: pytest.FixtureRequest, settings: dict[str, object], database_url: str
) -> Iterator[Target]:
    spec: str = request.config.getoption("--stack-config")
    if spec.startswith(("http://", "https://")):
        pytest.skip("these tests configure their own convostack; a URL target cannot be")
    with open_target(spec, database_url, settings) as target:
        yield target


@pytest.fixture(scope="package")
def http(stack_target: Target) -> Iterator[httpx2.Client]:
    with stack_target.http_client() as client:
        yield client


@pytest.fixture(scope="package")
def client_for(stack_target: Target, http: httpx2.Client) -> Callable[[str], openai.OpenAI]:
    def make(key: str) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=stack_target.base_url, api_key=key, http_client=http, max_retries=0
        )

    return make


@pytest.fixture(scope="package")
def client(client_for: Callable[[str], openai.OpenAI]) -> openai.OpenAI:
    return client_for(KEYS.a)


@pytest.fixture(scope="package")
def client_a2(client_for: Callable[[str], openai.OpenAI]) -> openai.OpenAI:
    return client_for(KEYS.a2)


@pytest.fixture(scope="package")
def client_b(client_for: Callable[[str], openai.OpenAI]) -> openai.OpenAI:
    return client_for(KEYS.b)


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.fixture(scope="package")
def headers_a() -> dict[str, str]:
    return auth(KEYS.a)


@pytest.fixture(scope="package")
def headers_b() -> dict[str, str]:
    return auth(KEYS.b)
