"""Around every request: a request id, one access log line, and, when configured, the
request's metrics and its span.

The request id is the caller's `x-request-id` when it is a plausible id (a proxy in
front may have set it), else a new `req_...`; it goes back in the `x-request-id`
response header, which the `openai` client shows as `response._request_id`, and into
the access line, so a client's report can be found in the logs.

This middleware is the outermost layer (outside the guard that turns crashes into 500s),
so that every answer, a crash's 500 and a missing key's 401 too, is counted and logged.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from convostack.http import DEFAULT_PRINCIPAL, PRINCIPAL_SCOPE_KEY
from convostack.observability.telemetry import Telemetry
from convostack.routing import ROUTE_SCOPE_KEY

access_log = logging.getLogger("convostack.access")

REQUEST_ID_HEADER = b"x-request-id"
REQUEST_ID_SCOPE_KEY = "convostack.request_id"
_PLAUSIBLE_ID = re.compile(rb"[A-Za-z0-9._:/+=-]{1,128}")
# Requests with no route share one label (paths are unbounded, labels must not be): those
# matching none, and those refused before routing (a missing key, the rate limit).
UNMATCHED = "(none)"


class _NewIds:
    """New ids: a random prefix and a counter, a fifth of the cost of fresh random
    bytes per request; the prefix is drawn again in each forked worker, so that ids stay
    unique across the processes of `serve --workers N` (and across restarts)."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = "req_" + secrets.token_hex(8)
        self._numbers = itertools.count(1)

    def __call__(self) -> bytes:
        return f"{self._prefix}{next(self._numbers):08x}".encode()


_new_id = _NewIds()


def _request_id(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and _PLAUSIBLE_ID.fullmatch(value):
            return bytes(value)
    return _new_id()


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, telemetry: Telemetry, access: bool = True):
        self.app = app
        self.telemetry = telemetry
        self.access = access
        self.observed = access or telemetry.enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope[REQUEST_ID_SCOPE_KEY] = request_id.decode()
        status = 500  # what the client gets if nothing was sent (the server stopped)

        async def with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id)]
            await send(message)

        if not self.observed:
            await self.app(scope, receive, with_id)
            return
        started = time.perf_counter()
        tracing = self.telemetry.tracing
        try:
            if tracing is None:
                await self.app(scope, receive, with_id)
            else:
                await self._traced(scope, receive, with_id, lambda: status)
        finally:
            self._finished(scope, status, time.perf_counter() - started)

    async def _traced(self, scope: Scope, receive: Receive, send: Send, status: Any) -> None:
        from opentelemetry import propagate
        from opentelemetry.trace import SpanKind, Status, StatusCode

        tracing = self.telemetry.tracing
        assert tracing is not None
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        with tracing.tracer.start_as_current_span(
            method,
            context=propagate.extract(headers),  # a caller's traceparent, if any
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"],
                        "convostack.request_id": scope[REQUEST_ID_SCOPE_KEY]},
        ) as span:  # fmt: skip
            try:
                await self.app(scope, receive, send)
            finally:
                route = scope.get(ROUTE_SCOPE_KEY)
                if route:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status())
                if status() >= 500:
                    span.set_status(Status(StatusCode.ERROR))

    def _finished(self, scope: Scope, status: int, elapsed: float) -> None:
        method: str = scope["method"]
        route: str = scope.get(ROUTE_SCOPE_KEY) or UNMATCHED
        metrics = self.telemetry.metrics
        if metrics is not None:
            metrics.request(method, route, status, elapsed)
        if self.access and access_log.isEnabledFor(logging.INFO):
            principal = scope.get(PRINCIPAL_SCOPE_KEY, DEFAULT_PRINCIPAL)
            ms = round(elapsed * 1000, 2)
            access_log.info(
                "%s %s %d %.2fms request_id=%s principal=%s",
                method, scope["path"], status, ms, scope[REQUEST_ID_SCOPE_KEY], principal,
                extra={"request_id": scope[REQUEST_ID_SCOPE_KEY], "method": method,
                       "path": scope["path"], "route": route, "status": status,
                       "duration_ms": ms, "principal": principal},
            )  # fmt: skip
