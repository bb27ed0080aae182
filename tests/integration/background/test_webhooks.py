"""Webhooks of background responses: each end (completed, failed, cancelled) is POSTed
to the configured URL, signed so that the `openai` client's `webhooks.unwrap` accepts it
with the endpoint's secret (and refuses it with another)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from convostack.testing.background import serving
from convostack.testing.plugin import configured_client
from convostack.testing.upstream import FAKE_MODEL as MODEL
from convostack.testing.upstream import Upstream

from .conftest import SETTINGS

SECRET = "whsec_" + base64.b64encode(b"a webhook signing key, 32 bytes").decode()
Received = list[tuple[bytes, dict[str, str]]]


@pytest.fixture(scope="module")
def received() -> Iterator[tuple[Received, str]]:
    got: Received = []

    async def hook(request: Request) -> Response:
        got.append((await request.body(), dict(request.headers)))
        return Response(status_code=204)

    with serving(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as port:
        yield got, f"http://127.0.0.1:{port}/hook"


@pytest.fixture(scope="module")
def client(
    request: pytest.FixtureRequest, upstream: Upstream, received: tuple[Received, str]
) -> Iterator[openai.OpenAI]:
    providers = [{"type": "openai_compat", "id": "fake", "base_url": upstream.url,
                  "max_retries": 0}]  # fmt: skip
    hooks = [{"url": received[1], "secret": SECRET}]
    with configured_client(request.config, {**SETTINGS, "providers": providers,
                                            "webhooks": hooks}) as client:  # fmt: skip
        yield client


def _event_for(client: openai.OpenAI, received: Received, response_id: str) -> str:
    deadline = time.monotonic() + 20
    while True:
        for body, headers in received:
            event = client.webhooks.unwrap(body, headers, secret=SECRET)
            if getattr(event.data, "id", None) == response_id:
                with pytest.raises(openai.InvalidWebhookSignatureError):
                    client.webhooks.unwrap(body, headers, secret="whsec_" + "A" * 44)
                return event.type
        assert time.monotonic() < deadline, "no webhook"
        time.sleep(0.05)


def test_each_end_of_a_background_response_is_posted_signed(
    client: openai.OpenAI, received: tuple[Received, str]
) -> None:
    done = client.responses.create(model=MODEL, input="hi", background=True)
    failed = client.responses.create(model=MODEL, input="fail500", background=True)
    cancelled = client.responses.create(model=MODEL, input="slow:3", background=True)
    client.responses.cancel(cancelled.id)
    assert _event_for(client, received[0], done.id) == "response.completed"
    assert _event_for(client, received[0], failed.id) == "response.failed"
    assert _event_for(client, received[0], cancelled.id) == "response.cancelled"
