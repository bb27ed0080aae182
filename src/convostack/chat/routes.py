"""HTTP routes of Chat Completions and Embeddings: parse, call the service, serialise."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from convostack.chat import service
from convostack.chat.models import ChatCompletionCreate, EmbeddingCreate
from convostack.event_stream import EventStream
from convostack.http import json_response, parse_body
from convostack.providers.router import ModelRouter
from convostack.routing import Route


def _router(request: Request) -> ModelRouter:
    router: ModelRouter = request.app.state.stack.models
    return router


async def create_chat_completion(request: Request) -> Response:
    body = await parse_body(request, ChatCompletionCreate)
    body.check_limits(request.app.state.stack.conversations.limits)
    if body.stream:
        events = await service.stream(_router(request), body)
        return EventStream(events)
    return json_response(await service.complete(_router(request), body))


async def create_embeddings(request: Request) -> Response:
    body = await parse_body(request, EmbeddingCreate)
    return json_response(await service.embed(_router(request), body))


routes = [
    Route("/v1/chat/completions", create_chat_completion, ("POST",)),
    Route("/v1/embeddings", create_embeddings, ("POST",)),
]
