"""The WebSocket endpoint at the ASGI level: which upgrades it refuses and how, and the
error events it answers bad or over-limit events with (none of which reach the service)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import orjson

from convostack.auth import ApiKey, KeyTable, hash_key
from convostack.limits import RateLimiter
from convostack.responses.service import ResponseService
from convostack.responses.websocket import ResponsesSocket

KEY = "sk-cs-test-key"
NO_SERVICE = cast(ResponseService, None)  # these paths never reach it


def _run(socket: ResponsesSocket, scope: dict[str, Any], incoming: list[Any]) -> list[Any]:
    messages = [{"type": "websocket.connect"}, *incoming, {"type": "websocket.disconnect"}]
    sent: list[Any] = []

    async def receive() -> Any:
        return messages.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    base = {"type": "websocket", "path": "/v1/responses", "headers": [], "extensions": {}}
    asyncio.run(socket({**base, **scope}, receive, send, NO_SERVICE))
    return sent


def _text(data: str) -> dict[str, Any]:
    return {"type": "websocket.receive", "text": data}


def test_other_paths_and_missing_keys_are_refused_before_the_upgrade() -> None:
    keys = KeyTable([ApiKey(sha256=hash_key(KEY), principal="team")])
    socket = ResponsesSocket(keys, 1000)
    assert _run(socket, {"path": "/v1/chat"}, []) == [{"type": "websocket.close", "code": 1008}]
    plain = _run(socket, {}, [])
    assert plain == [{"type": "websocket.close", "code": 1008}]
    denied = _run(socket, {"extensions": {"websocket.http.response": {}}}, [])
    assert denied[0]["status"] == 401
    assert orjson.loads(denied[1]["body"])["error"]["code"] == "invalid_api_key"
    accepted = _run(socket, {"headers": [(b"authorization", f"Bearer {KEY}".encode())]}, [])
    assert accepted[0] == {"type": "websocket.accept"}


def test_bad_events_are_error_events_and_the_connection_stays() -> None:
    socket = ResponsesSocket(None, 100, RateLimiter(60, burst=3))
    sent = _run(socket, {}, [_text("nope"), _text("[1]"), _text('{"type": "response.steer"}'),
                             _text("x" * 101), _text("{}")])  # fmt: skip
    events = [orjson.loads(m["text"]) for m in sent[1:]]
    assert [e["type"] for e in events] == ["error"] * 5
    assert [e["status"] for e in events] == [400, 400, 400, 413, 429]
    assert events[2]["error"]["param"] == "type"
    assert events[4]["error"]["code"] == "rate_limit_exceeded"
