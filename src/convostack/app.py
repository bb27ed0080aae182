"""The ASGI application: the routes, the middleware around them, and the Stack started
and stopped by the server's lifespan events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from convostack.auth import AuthMiddleware, KeyTable, warn_if_open
from convostack.chat.routes import routes as chat_routes
from convostack.config import Config
from convostack.conversations.routes import routes as conversation_routes
from convostack.errors import InternalError, ServiceUnavailableError
from convostack.files.routes import routes as file_routes
from convostack.http import JSON, MAX_BODY_SCOPE_KEY, json_response
from convostack.introspection.routes import routes as introspection_routes
from convostack.limits import RateLimiter
from convostack.models.routes import routes as models_routes
from convostack.observability.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from convostack.observability.middleware import ObservabilityMiddleware
from convostack.providers.recording import TEST_ID_HEADER, current_test_id
from convostack.responses.routes import routes as response_routes
from convostack.responses.websocket import ResponsesSocket
from convostack.routing import Route, Router, error_response
from convostack.stack import Stack
from convostack.ui.routes import routes as ui_routes
from convostack.vector_stores.routes import routes as vector_store_routes

log = logging.getLogger(__name__)

TEST_ID_HEADER_BYTES = TEST_ID_HEADER.encode()
SHUTTING_DOWN = (
    "The server stopped before this request was finished; nothing of it was kept. Retry it."
)


class GuardMiddleware:
    """Sets the body limit for the request, and turns any unexpected exception into a
    logged 500 whose body reveals nothing internal."""

    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[MAX_BODY_SCOPE_KEY] = self.max_body_bytes
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            # The server's grace period after SIGTERM ran out with this request unfinished
            # (what it had not written, it never will): say so in the OpenAI body.
            if not started:
                with contextlib.suppress(Exception):
                    await error_response(ServiceUnavailableError(SHUTTING_DOWN))(
                        scope, receive, send
                    )
            raise
        except ClientDisconnect:
            # Expected (a client that gave up, or whose body stalled): nobody to answer, and
            # nothing worth a traceback; at INFO, so no client can flood the error log.
            log.info(
                "client disconnected before sending the whole body of %s %s",
                scope.get("method"),
                scope.get("path"),
            )
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(
                InternalError("The server had an error while processing your request.")
            )
            await response(scope, receive, send)


class TestIdMiddleware:
    """In record/replay modes, files each model call under the test that caused it: the
    pytest plugin names the test in a header, which we keep for the request's duration."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        test_id = None
        for name, value in scope["headers"]:
            if name == TEST_ID_HEADER_BYTES:
                test_id = value.decode("utf-8", "replace")
                break
        token = current_test_id.set(test_id)
        try:
            await self.app(scope, receive, send)
        finally:
            current_test_id.reset(token)


class AppState:
    """What endpoints reach through `request.app.state`: the stack, and the routes (for
    /v1/inspect/routes)."""

    def __init__(self, stack: Stack, routes: list[Route] | None = None):
        self.stack = stack
        self.routes = routes or []


class App:
    """The whole server as one ASGI app: HTTP requests go through the middleware to the
    router; the lifespan events start and stop the Stack (or `lifespan()` does, for a
    caller driving the app in-process)."""

    def __init__(
        self,
        handler: ASGIApp,
        stack: Stack,
        routes: list[Route] | None = None,
        socket: ResponsesSocket | None = None,
    ):
        self._handler = handler
        self._socket = socket
        self.state = AppState(stack, routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            scope["app"] = self
            await self._handler(scope, receive, send)
        elif kind == "lifespan":
            await self._serve_lifespan(receive, send)
        # WebSocket mode of /v1/responses (responses/websocket.py); any other path, or
        # an app built without it, is refused: closing without accepting.
        elif kind == "websocket":
            if self._socket is None:
                await send({"type": "websocket.close", "code": 1000})
                return
            await self._socket(scope, receive, send, self.state.stack.responses)

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        await self.state.stack.start()
        try:
            yield
        finally:
            await self.state.stack.close()

    async def _serve_lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        lifespan = self.lifespan()
        try:
            await lifespan.__aenter__()
        except Exception as exc:
            await send({"type": "lifespan.startup.failed", "message": _reason(exc)})
            raise
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        try:
            await lifespan.__aexit__(None, None, None)
        except Exception as exc:
            await send({"type": "lifespan.shutdown.failed", "message": _reason(exc)})
            raise
        await send({"type": "lifespan.shutdown.complete"})


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


async def health(request: Request) -> Response:
    return json_response({"status": "ok"})


async def openapi_document(request: Request) -> Response:
    # Imported on first request: building the document needs the whole `openai` package.
    from convostack import openapi

    return Response(openapi.document_bytes(), media_type=JSON)


async def metrics_text(request: Request) -> Response:
    metrics = request.app.state.stack.telemetry.metrics
    return Response(metrics.exposition(), media_type=METRICS_CONTENT_TYPE)


def create_app(config: Config, stack: Stack | None = None) -> App:
    """Build the app; the Stack (store, services) starts with the app's lifespan."""
    stack = stack or Stack(config)
    routes = [
        Route("/v1/health", health, ("GET",)),
        Route("/openapi.json", openapi_document, ("GET",)),
        *conversation_routes,
        *response_routes,
        *models_routes,
        *chat_routes,
        *introspection_routes,
        *file_routes,
        *vector_store_routes,
        *ui_routes,
    ]
    if stack.telemetry.metrics is not None and config.metrics_port is None:
        routes.append(Route("/metrics", metrics_text, ("GET",)))
    handler: ASGIApp = Router(routes)
    if config.inference_mode != "live":
        handler = TestIdMiddleware(handler)
    keys = KeyTable(config.api_keys) if config.api_keys else None
    limiter = _limiter(config)
    handler = _with_auth(handler, config, keys, limiter)
    handler = GuardMiddleware(handler, max_body_bytes=config.max_body_bytes)
    # Always: every answer carries its x-request-id (the rest only when configured).
    handler = ObservabilityMiddleware(handler, stack.telemetry, access=config.access_log)
    socket = ResponsesSocket(keys, config.max_body_bytes, limiter)
    return App(handler, stack, routes, socket)


def _limiter(config: Config) -> RateLimiter | None:
    """The per-principal rate limit, one bucket for HTTP and WebSocket alike."""
    if config.rate_limit_per_minute is None:
        return None
    return RateLimiter(
        config.rate_limit_per_minute,
        config.rate_limit_burst,
        bytes_per_token=config.rate_limit_bytes_per_token,
    )


def _with_auth(
    app: ASGIApp, config: Config, keys: KeyTable | None, limiter: RateLimiter | None
) -> ASGIApp:
    """API keys and the rate limit (auth.py); no middleware at all when neither is set."""
    warn_if_open(config.host, keys)
    if keys is None and limiter is None:
        return app
    return AuthMiddleware(app, keys=keys, limiter=limiter)
