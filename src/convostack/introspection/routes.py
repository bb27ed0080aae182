"""`/v1/version`, `/v1/inspect/routes` and `/v1/providers[/{provider_id}]`: what this
server is and what it runs, behind the same API keys as every other `/v1` route.

A provider is shown by its type, the models it serves now, a health check (listing its
models, bounded in time) and its settings without secrets: no key, no token, no
password, no userinfo in a URL. These routes are extensions: OpenAI has none of them.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from convostack import __version__
from convostack.errors import NotFoundError
from convostack.http import json_response
from convostack.providers.base import InferenceProvider, health_check
from convostack.providers.settings import ProviderSettings
from convostack.redaction import Scrubber, split_userinfo
from convostack.routing import Route
from convostack.stack import Stack

HEALTH_TIMEOUT_SECONDS = 5.0
# Settings whose value is a credential by its name: never shown, not even masked.
_SECRET_NAME = re.compile(r"(?i)key|token|secret|password|authorization|header")

# The OpenAI API's own routes (method, path template); every other route is ours.
OPENAI_ROUTES = frozenset(
    {
        ("POST", "/v1/conversations"),
        ("GET", "/v1/conversations/{conversation_id}"),
        ("POST", "/v1/conversations/{conversation_id}"),
        ("DELETE", "/v1/conversations/{conversation_id}"),
        ("POST", "/v1/conversations/{conversation_id}/items"),
        ("GET", "/v1/conversations/{conversation_id}/items"),
        ("GET", "/v1/conversations/{conversation_id}/items/{item_id}"),
        ("DELETE", "/v1/conversations/{conversation_id}/items/{item_id}"),
        ("POST", "/v1/responses"),
        ("GET", "/v1/responses/{response_id}"),
        ("DELETE", "/v1/responses/{response_id}"),
        ("GET", "/v1/responses/{response_id}/input_items"),
        ("POST", "/v1/responses/{response_id}/cancel"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/embeddings"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/{model_id:path}"),
    }
)


def route_table(routes: list[Route]) -> list[dict[str, Any]]:
    """One entry per path and method, with whether OpenAI defines it."""
    return [
        {
            "route": route.path,
            "method": method,
            "kind": "openai" if (method, route.path) in OPENAI_ROUTES else "extension",
        }
        for route in routes
        for method in route.methods
    ]


async def version(request: Request) -> Response:
    return json_response({"version": __version__})


async def inspect_routes(request: Request) -> Response:
    routes: list[Route] = request.app.state.routes
    return json_response({"object": "list", "data": route_table(routes)})


def _stack(request: Request) -> Stack:
    stack: Stack = request.app.state.stack
    return stack


def public_settings(settings: ProviderSettings | None) -> dict[str, Any]:
    """The provider's settings as an operator may see them: secrets left out."""
    if settings is None:
        return {}
    shown: dict[str, Any] = {}
    for name, value in settings.model_dump(mode="json").items():
        if name in ("type", "id") or _SECRET_NAME.search(name):
            continue
        if isinstance(value, str) and "://" in value:
            value = split_userinfo(value)[0]
        shown[name] = value
    return shown


async def _health(provider: InferenceProvider, settings: ProviderSettings | None) -> dict[str, str]:
    """The provider's health check, bounded in time; its error text is scrubbed, since
    an upstream may quote our request (credentials included)."""
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            await health_check(provider)
    except Exception as exc:  # any failure is the provider's health, not ours
        scrub = Scrubber([getattr(settings, "api_key", None)], limit=300)
        return {"status": "error", "message": scrub(str(exc) or type(exc).__name__)}
    return {"status": "ok"}


async def _describe(stack: Stack, provider: InferenceProvider) -> dict[str, Any]:
    settings = stack.provider_settings.get(provider.id)
    served = [r.public_id for r in stack.models.models() if r.provider is provider]
    return {
        "object": "provider",
        "provider_id": provider.id,
        "provider_type": settings.type if settings else type(provider).__name__,
        "api": "inference",
        "models": served,
        "health": await _health(provider, settings),
        "config": public_settings(settings),
    }


async def list_providers(request: Request) -> Response:
    stack = _stack(request)
    described = await asyncio.gather(*(_describe(stack, p) for p in stack.models.providers))
    return json_response({"object": "list", "data": list(described)})


async def retrieve_provider(request: Request) -> Response:
    stack = _stack(request)
    wanted: str = request.path_params["provider_id"]
    for provider in stack.models.providers:
        if provider.id == wanted:
            return json_response(await _describe(stack, provider))
    raise NotFoundError(
        f"No provider '{wanted}'. List the providers with GET /v1/providers.",
        param="provider_id",
        code="provider_not_found",
    )


routes = [
    Route("/v1/version", version, ("GET",)),
    Route("/v1/inspect/routes", inspect_routes, ("GET",)),
    Route("/v1/providers", list_providers, ("GET",)),
    Route("/v1/providers/{provider_id}", retrieve_provider, ("GET",)),
]
