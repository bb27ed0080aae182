"""HTTP routes of the Conversations API: unpack the request, call the service, serialise."""

from __future__ import annotations

from typing import cast

from starlette.requests import Request
from starlette.responses import Response

from convostack.conversations.models import ConversationCreate, ConversationUpdate, ItemsCreate
from convostack.conversations.service import ConversationService, check_include
from convostack.http import (
    JSON,
    json_response,
    list_page_bytes,
    parse_body,
    principal,
    query_choice,
    query_int,
    query_list,
)
from convostack.routing import Route
from convostack.storage.base import Order


def _service(request: Request) -> ConversationService:
    service: ConversationService = request.app.state.stack.conversations
    return service


def _path(request: Request, name: str) -> str:
    value: str = request.path_params[name]
    return value


async def create_conversation(request: Request) -> Response:
    body = await parse_body(request, ConversationCreate)
    conversation = await _service(request).create(principal(request), body.items, body.metadata)
    return json_response(conversation)


def metadata_filter(request: Request) -> dict[str, str]:
    """`metadata[KEY]=VALUE` query parameters (the form the `openai` client and browsers'
    URLSearchParams both write), as one mapping; the service checks its size."""
    return {
        key[len("metadata[") : -1]: value
        for key, value in request.query_params.multi_items()
        if key.startswith("metadata[") and key.endswith("]")
    }


async def list_conversations(request: Request) -> Response:
    limit = query_int(request, "limit", 20, 1, 100)
    order = cast(Order, query_choice(request, "order", ("asc", "desc"), "desc"))
    after = request.query_params.get("after") or None
    data, has_more = await _service(request).list_conversations(
        principal(request), after=after, limit=limit, order=order,
        metadata=metadata_filter(request),
    )  # fmt: skip
    first, last = (data[0]["id"], data[-1]["id"]) if data else ("", "")
    return json_response(
        {"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": has_more}
    )


async def retrieve_conversation(request: Request) -> Response:
    conversation = await _service(request).retrieve(
        principal(request), _path(request, "conversation_id")
    )
    return json_response(conversation)


async def update_conversation(request: Request) -> Response:
    body = await parse_body(request, ConversationUpdate)
    conversation = await _service(request).update(
        principal(request), _path(request, "conversation_id"), body.metadata
    )
    return json_response(conversation)


async def delete_conversation(request: Request) -> Response:
    deleted = await _service(request).delete(principal(request), _path(request, "conversation_id"))
    return json_response(deleted)


async def create_items(request: Request) -> Response:
    check_include(query_list(request, "include"))
    body = await parse_body(request, ItemsCreate)
    items = await _service(request).add_items(
        principal(request), _path(request, "conversation_id"), body.items
    )
    content = list_page_bytes((i.body for i in items), items[0].id, items[-1].id, False)
    return Response(content, media_type=JSON)


async def list_items(request: Request) -> Response:
    check_include(query_list(request, "include"))
    limit = query_int(request, "limit", 20, 1, 100)
    order = cast(Order, query_choice(request, "order", ("asc", "desc"), "desc"))
    after = request.query_params.get("after") or None
    page = await _service(request).list_items(
        principal(request), _path(request, "conversation_id"), after=after, limit=limit, order=order
    )
    first = page.ids[0] if page.ids else ""
    last = page.ids[-1] if page.ids else ""
    return Response(list_page_bytes(page.bodies, first, last, page.has_more), media_type=JSON)


async def retrieve_item(request: Request) -> Response:
    check_include(query_list(request, "include"))
    body = await _service(request).get_item(
        principal(request), _path(request, "conversation_id"), _path(request, "item_id")
    )
    return Response(body, media_type=JSON)


async def delete_item(request: Request) -> Response:
    conversation = await _service(request).delete_item(
        principal(request), _path(request, "conversation_id"), _path(request, "item_id")
    )
    return json_response(conversation)


routes = [
    Route("/v1/conversations", create_conversation, ("POST",)),
    Route("/v1/conversations", list_conversations, ("GET",)),
    Route("/v1/conversations/{conversation_id}", retrieve_conversation, ("GET",)),
    Route("/v1/conversations/{conversation_id}", update_conversation, ("POST",)),
    Route("/v1/conversations/{conversation_id}", delete_conversation, ("DELETE",)),
    Route("/v1/conversations/{conversation_id}/items", create_items, ("POST",)),
    Route("/v1/conversations/{conversation_id}/items", list_items, ("GET",)),
    Route("/v1/conversations/{conversation_id}/items/{item_id}", retrieve_item, ("GET",)),
    Route("/v1/conversations/{conversation_id}/items/{item_id}", delete_item, ("DELETE",)),
]
