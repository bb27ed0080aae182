"""Webhooks are durable: the database writes the event in the transaction that ends a
background response, and any serving process delivers it. An endpoint that fails is tried
again (with the same webhook-id, so the receiver can tell) while one that took the event
is not sent it twice; an event that no endpoint could take before its server stopped is
delivered by the next server on the same database."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

SECRET = "whsec_" + base64.b64encode(b"the outbox tests' 32-byte secret").decode()


class Receiver:
    """Two endpoints: /ok takes everything; /flaky answers 500 while `failing`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []
        self.failing = True

    async def hook(self, request: Request) -> Response:
        name = request.url.path.strip("/")
        self.calls.append((name, await request.body(), dict(request.headers)))
        return Response(status_code=500 if name == "flaky" and self.failing else 204)

    def ids(self, client: openai.OpenAI, name: str, response_id: str) -> list[tuple[str, str]]:
        """(webhook-id, status) of each call to `name` about `response_id`."""
        found: list[tuple[str, str]] = []
        for endpoint, body, headers in list(self.calls):
            event = client.webhooks.unwrap(body, headers, secret=SECRET)
            if endpoint == name and getattr(event.data, "id", None) == response_id:
                found.append((headers["webhook-id"], event.type))
        return found


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    got = Receiver()
    routes = [Route(f"/{n}", got.hook, methods=["POST"]) for n in ("ok", "flaky")]
    with serving(Starlette(routes=routes)) as port:
        yield got, f"http://127.0.0.1:{port}"


def _settings(upstream: Upstream, hooks: list[dict[str, Any]]) -> dict[str, Any]:
    providers = [{"type": "openai_compat", "id": "fake", "base_url": upstream.url,
                  "max_retries": 0}]  # fmt: skip
    return {**SETTINGS, "providers": providers, "webhooks": hooks}


def _wait(check: Any, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_failing_endpoint_is_tried_again_and_the_other_not(
    request: pytest.FixtureRequest, upstream: Upstream, receiver: tuple[Receiver, str]
) -> None:
    got, root = receiver
    hooks = [{"url": f"{root}/ok", "secret": SECRET}, {"url": f"{root}/flaky", "secret": SECRET}]
    with configured_client(request.config, _settings(upstream, hooks),
                           request.config.getoption("--db")) as client:  # fmt: skip
        done = client.responses.create(model=MODEL, input="hi", background=True)
        _wait(lambda: got.ids(client, "flaky", done.id), "no first try")
        got.failing = False
        _wait(lambda: len(got.ids(client, "flaky", done.id)) == 2, "no second try")
        first, second = got.ids(client, "flaky", done.id)
        assert first == second  # one event: the same id and type each try
        assert first[1] == "response.completed"
        time.sleep(1.5)  # past another try's time: the endpoint that took it got it once
        assert len(got.ids(client, "ok", done.id)) == 1
        assert len(got.ids(client, "flaky", done.id)) == 2


def test_an_event_outlives_the_server_that_ended_the_response(
    request: pytest.FixtureRequest,
    upstream: Upstream,
    receiver: tuple[Receiver, str],
    tmp_path: Path,
) -> None:
    got, root = receiver
    db = request.config.getoption("--db") or f"sqlite:///{tmp_path / 'outbox.db'}"
    hooks = [{"url": f"{root}/flaky", "secret": SECRET}]
    with configured_client(request.config, _settings(upstream, hooks), db) as client:
        done = client.responses.create(model=MODEL, input="hi", background=True)
        _wait(lambda: client.responses.retrieve(done.id).status == "completed", "not completed")
        _wait(lambda: got.ids(client, "flaky", done.id), "no first try")
    got.failing = False
    tried = len(got.ids(client, "flaky", done.id))
    with configured_client(request.config, _settings(upstream, hooks), db) as client:
        _wait(lambda: len(got.ids(client, "flaky", done.id)) > tried, "not delivered after")
    assert got.ids(client, "flaky", done.id)[-1][1] == "response.completed"
