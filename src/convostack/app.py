"""The ASGI application: routes mounted, errors mapped once, the Stack started in lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from convostack.auth import AuthMiddleware, KeyTable, warn_if_open
from convostack.chat.routes import routes as chat_routes
from convostack.config import Config
from convostack.conversations.routes import routes as conversation_routes
from convostack.errors import (
    APIError,
    InternalError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    ServiceUnavailableError,
    store_unavailable_message,
)
from convostack.http import JSON, MAX_BODY_SCOPE_KEY, json_response
from convostack.limits import RateLimiter
from convostack.models.routes import routes as models_routes
from convostack.providers.recording import TEST_ID_HEADER, current_test_id
from convostack.responses.routes import routes as response_routes
from convostack.stack import Stack
from convostack.storage.base import StoreUnavailable

log = logging.getLogger(__name__)

TEST_ID_HEADER_BYTES = TEST_ID_HEADER.encode()


def error_response(error: APIError) -> Response:
    return Response(
        error.body_bytes(), status_code=error.status, media_type=JSON, headers=error.headers()
    )


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        error: APIError = MethodNotAllowedError(
            f"Method {request.method} is not allowed on {request.url.path}."
        )
    elif exc.status_code == 404:
        error = NotFoundError(f"Invalid URL ({request.method} {request.url.path})")
    else:
        error = InvalidRequestError(str(exc.detail), status=exc.status_code)
    return error_response(error)


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("store unavailable: %s", exc)
    response = error_response(ServiceUnavailableError(store_unavailable_message()))
    response.headers["retry-after"] = "1"  # the openai client waits that long, then retries
    return response


class GuardMiddleware:
    """Sets the body limit for the request, and turns any unexpected exception into a
    logged 500 whose body reveals nothing internal."""

    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[MAX_BODY_SCOPE_KEY] = self.max_body_bytes
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
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
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == TEST_ID_HEADER_BYTES:
                    test_id = value.decode("utf-8", "replace")
                    break
        token = current_test_id.set(test_id)
        try:
            await self.app(scope, receive, send)
        finally:
            current_test_id.reset(token)


async def health(request: Request) -> Response:
    return json_response({"status": "ok"})


async def openapi_document(request: Request) -> Response:
    # Imported on first request: building the document needs the whole `openai` package.
    from convostack import openapi

    return Response(openapi.document_bytes(), media_type=JSON)


def create_app(config: Config, stack: Stack | None = None) -> Starlette:
    """Build the app; the Stack (store, services) starts with the app's lifespan."""
    the_stack = stack or Stack(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await the_stack.start()
        try:
            yield
        finally:
            await the_stack.close()

    app = Starlette(
        routes=[
            Route("/v1/health", health, methods=["GET"]),
            Route("/openapi.json", openapi_document, methods=["GET"]),
            *conversation_routes,
            *response_routes,
            *models_routes,
            *chat_routes,
        ],
        exception_handlers={
            APIError: _api_error,
            HTTPException: _http_error,
            StoreUnavailable: _store_unavailable,
        },
        lifespan=lifespan,
    )
    # A path with a stray slash is an unknown URL (404 in the OpenAI body), as upstream;
    # not a 307 redirect, which API clients do not expect and bodies do not survive.
    app.router.redirect_slashes = False
    if config.inference_mode != "live":
        app.add_middleware(TestIdMiddleware)
    _add_auth(app, config)
    app.add_middleware(GuardMiddleware, max_body_bytes=config.max_body_bytes)
    app.state.stack = the_stack
    return app


def _add_auth(app: Starlette, config: Config) -> None:
    """API keys and the rate limit (auth.py); no middleware at all when neither is set."""
    keys = KeyTable(config.api_keys) if config.api_keys else None
    limiter = None
    if config.rate_limit_per_minute is not None:
        limiter = RateLimiter(config.rate_limit_per_minute, config.rate_limit_burst)
    warn_if_open(config.host, keys)
    if keys is not None or limiter is not None:
        app.add_middleware(AuthMiddleware, keys=keys, limiter=limiter)
