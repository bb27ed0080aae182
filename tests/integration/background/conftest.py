"""Background responses against the fake upstream, whose faults make a turn slow
(`slow:<s>`), drip its stream (`drip:<s>`) or fail (`fail500`). The convostack under test
runs at most two background turns at once, so a third stays queued."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from convostack.testing.fake_upstream import fake_upstream_server
from convostack.testing.plugin import configured_target
from convostack.testing.stack import Target
from convostack.testing.upstream import FAKE_MODEL, Upstream

SETTINGS = {
    "inference_mode": "live",  # the fake is the model: nothing to record
    "background_concurrency": 2,
    "background_poll_seconds": 0.2,
    "background_lease_seconds": 2,
    "background_stream_poll_seconds": 0.05,
}


@pytest.fixture(scope="package")
def upstream() -> Iterator[Upstream]:
    with fake_upstream_server(models=[FAKE_MODEL]) as url:
        yield Upstream(url)


@pytest.fixture(scope="package")
def stack_target(request: pytest.FixtureRequest, upstream: Upstream) -> Iterator[Target]:
    providers = [{"type": "openai_compat", "id": "fake", "base_url": upstream.url,
                  "max_retries": 0}]  # fmt: skip
    settings = {**SETTINGS, "providers": providers}
    with configured_target(request.config, settings, request.config.getoption("--db")) as target:
        yield target


@pytest.fixture(scope="package")
def client(stack_target: Target) -> Iterator[openai.OpenAI]:
    with stack_target.http_client() as http:
        yield stack_target.openai_client(http)
