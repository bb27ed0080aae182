"""HTTP routes of the Responses API: unpack the request, call the service, serialise."""

from __future__ import annotations

from typing import cast

import orjson
from starlette.requests import Request
from starlette.responses import Response

from convostack.event_stream import EventStream
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
from convostack.responses.background import BackgroundResponses
from convostack.responses.compact import InputTokensCount, ResponseCompact
from convostack.responses.models import ResponseCreate
from convostack.responses.service import ResponseService
from convostack.responses.streaming import as_async, replay_events, sse
from convostack.routing import Route
from convostack.storage.base import Order


def _background(request: Request) -> BackgroundResponses:
    background: BackgroundResponses = request.app.state.stack.background
    return background


def _service(request: Request) -> ResponseService:
    service: ResponseService = request.app.state.stack.responses
    return service


def _id(request: Request) -> str:
    value: str = request.path_params["response_id"]
    return value


async def create_response(request: Request) -> Response:
    body = await parse_body(request, ResponseCreate)
    service = _service(request)
    if body.background:
        queued = await _background(request).create(principal(request), body)
        if body.stream:
            events = await _background(request).stream(principal(request), queued["id"], -1)
            assert events is not None  # created with its events kept
            return EventStream(events)
        return json_response(queued)
    # Everything is checked here, before a stream starts: errors are real HTTP errors.
    turn = await service.prepare(principal(request), body)
    if body.stream:
        return EventStream(sse(service.stream(turn)))
    return json_response(await service.run(turn))


async def compact_response(request: Request) -> Response:
    body = await parse_body(request, ResponseCompact)
    return json_response(await _service(request).compaction.compact(principal(request), body))


async def count_input_tokens(request: Request) -> Response:
    body = await parse_body(request, InputTokensCount)
    return json_response(await _service(request).compaction.count(principal(request), body))


async def retrieve_response(request: Request) -> Response:
    include = query_list(request, "include")
    body = await _service(request).retrieve(principal(request), _id(request), include)
    if request.query_params.get("stream") == "true":
        starting_after = query_int(request, "starting_after", -1, -1, 1 << 31)
        kept = await _background(request).stream(principal(request), _id(request), starting_after)
        if kept is not None:
            return EventStream(kept)
        events = as_async(replay_events(orjson.loads(body)))
        return EventStream(sse(events, starting_after))
    return Response(body, media_type=JSON)


async def delete_response(request: Request) -> Response:
    return json_response(await _service(request).delete(principal(request), _id(request)))


def _paging(request: Request) -> tuple[str | None, int, Order]:
    limit = query_int(request, "limit", 20, 1, 100)
    order = cast(Order, query_choice(request, "order", ("asc", "desc"), "desc"))
    return request.query_params.get("after") or None, limit, order


async def list_input_items(request: Request) -> Response:
    after, limit, order = _paging(request)
    bodies, ids, has_more = await _service(request).input_items(
        principal(request), _id(request), after=after, limit=limit, order=order
    )
    first, last = (ids[0], ids[-1]) if ids else ("", "")
    return Response(list_page_bytes(bodies, first, last, has_more), media_type=JSON)


async def list_responses(request: Request) -> Response:
    after, limit, order = _paging(request)
    page = await _service(request).list(
        principal(request), after=after, limit=limit, order=order,
        model=request.query_params.get("model") or None,
    )  # fmt: skip
    first, last = (page.ids[0], page.ids[-1]) if page.ids else ("", "")
    return Response(list_page_bytes(page.bodies, first, last, page.has_more), media_type=JSON)


async def cancel_response(request: Request) -> Response:
    return json_response(await _background(request).cancel(principal(request), _id(request)))


routes = [
    Route("/v1/responses", create_response, ("POST",)),
    Route("/v1/responses", list_responses, ("GET",)),
    Route("/v1/responses/compact", compact_response, ("POST",)),
    Route("/v1/responses/input_tokens", count_input_tokens, ("POST",)),
    Route("/v1/responses/{response_id}", retrieve_response, ("GET",)),
    Route("/v1/responses/{response_id}", delete_response, ("DELETE",)),
    Route("/v1/responses/{response_id}/input_items", list_input_items, ("GET",)),
    Route("/v1/responses/{response_id}/cancel", cancel_response, ("POST",)),
]
