"""Responses tests run against our fake upstream, which is deterministic and lets a test
see exactly which messages went to the model. The convostack under test (library or
spawned server, per --stack-config) is configured to use it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import openai
import pytest

from convostack.testing.fake_upstream import fake_upstream_server
from convostack.testing.stack import Target, free_port, open_target
from convostack.testing.upstream import FAKE_MODEL, Upstream


@pytest.fixture(scope="package")
def upstream() -> Iterator[Upstream]:
    with fake_upstream_server(models=[FAKE_MODEL, "gpt-4.1", "omni-moderation-latest"]) as url:
        yield Upstream(url)


@pytest.fixture(autouse=True)
def _fresh_records(upstream: Upstream) -> None:
    upstream.reset()


@pytest.fixture(scope="package")
def stack_target(request: pytest.FixtureRequest, upstream: Upstream) -> Iterator[Target]:
    spec: str = request.config.getoption("--stack-config")
    if spec.startswith(("http://", "https://")):
        pytest.skip("these tests configure their own convostack; a URL target cannot be")
    settings = {
        "inference_mode": "live",  # the fake is the model: nothing to record
        "providers": [
            {"type": "openai_compat", "id": "fake", "base_url": upstream.url, "max_retries": 0},
            {"type": "openai_compat", "id": "small", "base_url": upstream.url, "max_retries": 0,
             "models": ["small-model"], "context_length": 400},
            {"type": "openai_compat", "id": "dead", "base_url": f"http://127.0.0.1:{free_port()}/v1",
             "max_retries": 0, "models": ["dead-model"]},
        ],
    }  # fmt: skip
    with open_target(spec, request.config.getoption("--db"), settings) as target:
        yield target


@pytest.fixture(scope="package")
def http(stack_target: Target) -> Iterator[httpx2.Client]:
    with stack_target.http_client() as client:
        yield client


@pytest.fixture(scope="package")
def client(stack_target: Target, http: httpx2.Client) -> openai.OpenAI:
    return stack_target.openai_client(http)
