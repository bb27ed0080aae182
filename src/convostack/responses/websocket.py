"""WebSocket mode of `/v1/responses` (`GET` upgraded), as `client.responses.connect()`
speaks it: the client sends `response.create` events (the HTTP create body, without
`stream` or `background`), the server answers each with exactly the events an HTTP
stream would carry, numbered from 0 per response. Responses run one after another on a
connection; what saves time over HTTP is no new connection, TLS handshake or request
parse per turn, and history kept in memory.

Connection-local state: the history of every response made on the connection (its
input and output) stays in memory until the connection closes, so a
`previous_response_id` naming one works without reading the store, and even with
`store: false` (the last LOCAL_RESPONSES responses; older ones are read from the store
when they were stored). `generate: false` prepares a response without calling the
model (a prewarm): a later turn may continue from it.

Authentication is the upgrade request's `Authorization: Bearer` key; a refused key is an
HTTP 401 with the OpenAI error body (the ASGI denial-response extension) or, where the
server cannot send one, a close before accepting. A bad event is answered with the
types' error event (`{"type": "error", "error": {...}, "status": 400}`) and the
connection stays open. `response.steer` is not supported (an error event says so).
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from convostack.auth import KeyTable, authenticate, rate_limited
from convostack.errors import (
    APIError,
    AuthenticationError,
    InternalError,
    InvalidRequestError,
    PayloadTooLargeError,
)
from convostack.http import DEFAULT_PRINCIPAL, parse_json
from convostack.limits import RateLimiter
from convostack.providers.base import JSONDict
from convostack.responses.models import ResponseCreate
from convostack.responses.service import ResponseService
from convostack.responses.turn import parse_items

log = logging.getLogger(__name__)

PATH = "/v1/responses"
LOCAL_RESPONSES = 64
# Fields of the `response.create` event that are not the HTTP body's.
_ENVELOPE = ("type", "generate", "stream_id", "stream")


def error_event(error: APIError, stream_id: Any = None) -> JSONDict:
    event: JSONDict = {"type": "error", **error.body(), "status": error.status}
    if stream_id is not None:
        event["stream_id"] = stream_id
    return event


class ResponsesSocket:
    """Serves WebSocket scopes: `/v1/responses` only, authenticated like HTTP; with a
    rate limit, each `response.create` costs what the same HTTP request would."""

    def __init__(
        self, keys: KeyTable | None, max_message_bytes: int, limiter: RateLimiter | None = None
    ):
        self._keys = keys
        self._max_message_bytes = max_message_bytes
        self._limiter = limiter

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, service: ResponseService
    ) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        if scope.get("path") != PATH:
            await send({"type": "websocket.close", "code": 1008})  # an HTTP 403 to the client
            return
        principal = DEFAULT_PRINCIPAL
        if self._keys is not None:
            try:
                principal = authenticate(self._keys, scope["headers"])
            except AuthenticationError as refused:
                await _deny(scope, send, refused)
                return
        await send({"type": "websocket.accept"})
        connection = Connection(service, principal, send, self._max_message_bytes)
        connection.limiter = self._limiter
        with contextlib.suppress(ClientGone):  # the client left mid-response: nothing to say
            await connection.serve(receive)


async def _deny(scope: Scope, send: Send, error: APIError) -> None:
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    body = error.body_bytes()
    headers = [(b"content-type", b"application/json"),
               (b"www-authenticate", b'Bearer realm="convostack"')]  # fmt: skip
    await send({"type": "websocket.http.response.start", "status": error.status,
                "headers": headers})  # fmt: skip
    await send({"type": "websocket.http.response.body", "body": body})


class ClientGone(Exception):
    """A send failed: the client closed the connection (uvicorn raises an OSError)."""


class Connection:
    limiter: RateLimiter | None = None

    def __init__(self, service: ResponseService, principal: str, send: Send, limit: int):
        self._service = service
        self._principal = principal
        self._send = send
        self._limit = limit
        # response id -> its whole history (earlier items, its input, its output)
        self._local: OrderedDict[str, list[JSONDict]] = OrderedDict()

    async def serve(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            data = raw.encode() if raw is not None else message.get("bytes") or b""
            try:
                await self._event(data)
            except APIError as exc:
                await self._emit(error_event(exc))
            except ClientGone:
                raise
            except Exception:
                log.exception("WebSocket event failed")
                await self._emit(error_event(InternalError(
                    "The server had an error while processing your request.")))  # fmt: skip

    async def _emit(self, event: JSONDict) -> None:
        try:
            await self._send({"type": "websocket.send", "text": orjson.dumps(event).decode()})
        except OSError:
            raise ClientGone from None

    async def _event(self, data: bytes) -> None:
        if len(data) > self._limit:
            raise PayloadTooLargeError(
                f"Event too large: the limit is {self._limit} bytes.", code="request_too_large"
            )
        limiter = self.limiter
        if limiter is not None:
            wait = limiter.take(self._principal, limiter.cost(len(data)))
            if wait > 0:
                raise rate_limited(self._principal, limiter, wait)
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise InvalidRequestError("The event is not valid JSON.") from None
        if not isinstance(event, dict):
            raise InvalidRequestError("An event must be a JSON object.", code="invalid_type")
        kind = event.get("type")
        if kind != "response.create":
            raise InvalidRequestError(
                f"Invalid event type '{kind}': this server accepts 'response.create'.",
                code="invalid_value",
                param="type",
            )
        stream_id = event.get("stream_id")
        try:
            await self._create(event, stream_id)
        except APIError as exc:
            await self._emit(error_event(exc, stream_id))

    async def _create(self, event: JSONDict, stream_id: Any) -> None:
        generate = event.get("generate", True) is not False
        fields = {k: v for k, v in event.items() if k not in _ENVELOPE}
        body = parse_json(orjson.dumps(fields), ResponseCreate)
        turn = await self._service.prepare(self._principal, body, self._local)
        number = 0
        final: JSONDict | None = None
        # Closed even when the client leaves mid-response: the service then keeps the
        # response as cancelled and appends nothing, as for an HTTP stream.
        async with contextlib.aclosing(self._service.stream(turn, generate)) as events:
            async for out in events:
                out["sequence_number"] = number
                number += 1
                if stream_id is not None:
                    out["stream_id"] = stream_id
                if out["type"] in ("response.completed", "response.incomplete"):
                    final = out["response"]
                await self._emit(out)
        if final is not None:
            inputs = parse_items([item.body for item in turn.input_items.items])
            self._local[turn.response_id] = [*turn.history, *inputs, *final["output"]]
            while len(self._local) > LOCAL_RESPONSES:
                self._local.popitem(last=False)
