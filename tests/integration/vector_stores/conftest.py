"""Files, vector stores and file_search through the stock `openai` client, on a
convostack (library or spawned server, SQLite or PostgreSQL per --db) whose embedder is
the deterministic test double (setting `embedder: testing-hash`, chosen explicitly here)
and whose model is the fake upstream."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx2
import openai
import pytest

from convostack.auth import hash_key
from convostack.testing.fake_upstream import fake_upstream_server
from convostack.testing.stack import Target, open_target
from convostack.testing.upstream import FAKE_MODEL, Upstream

KEY_A = "vector-store-tests-key-of-tenant-a"
KEY_B = "vector-store-tests-key-of-tenant-b"
SETTINGS = {
    "inference_mode": "live",  # the fake is the model: nothing to record
    "embedder": "testing-hash",
    "ingest_poll_seconds": 0.2,
    "file_expiry_sweep_seconds": 0.2,
    "max_file_bytes": 200_000,
    "max_file_bytes_per_principal": 500_000,
    "api_keys": [
        {"sha256": hash_key(KEY_A), "principal": "tenant-a"},
        {"sha256": hash_key(KEY_B), "principal": "tenant-b"},
    ],
}


@pytest.fixture(scope="package")
def upstream() -> Iterator[Upstream]:
    with fake_upstream_server(models=[FAKE_MODEL]) as url:
        yield Upstream(url)


@pytest.fixture(scope="package")
def stack_target(request: pytest.FixtureRequest, upstream: Upstream) -> Iterator[Target]:
    spec: str = request.config.getoption("--stack-config")
    if spec.startswith(("http://", "https://")):
        pytest.skip("these tests configure their own convostack; a URL target cannot be")
    settings = {
        **SETTINGS,
        "providers": [
            {"type": "openai_compat", "id": "fake", "base_url": upstream.url, "max_retries": 0},
        ],
    }
    with open_target(spec, request.config.getoption("--db"), settings) as target:
        yield target


@pytest.fixture(scope="package")
def http(stack_target: Target) -> Iterator[httpx2.Client]:
    with stack_target.http_client() as client:
        yield client


@pytest.fixture(scope="package")
def client(stack_target: Target, http: httpx2.Client) -> openai.OpenAI:
    return stack_target.openai_client(http, KEY_A)


@pytest.fixture(scope="package")
def other_client(stack_target: Target, http: httpx2.Client) -> openai.OpenAI:
    """Another tenant: the same server, another principal."""
    return stack_target.openai_client(http, KEY_B)


def wait_done(client: openai.OpenAI, vector_store_id: str, file_id: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = client.vector_stores.files.retrieve(file_id, vector_store_id=vector_store_id)
        if found.status != "in_progress":
            return found.status
        time.sleep(0.1)
    raise AssertionError(f"{file_id} still in_progress after 30 s")
