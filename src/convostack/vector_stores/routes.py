"""HTTP routes of the Vector Stores API: unpack the request, call the service, serialise."""

from __future__ import annotations

from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response

from convostack.http import json_response, parse_body, principal, query_choice, query_int
from convostack.routing import Route
from convostack.storage.base import Order
from convostack.storage.files_base import STATUSES
from convostack.vector_stores.filters import check_filter
from convostack.vector_stores.models import (
    BatchCreate,
    SearchRequest,
    StoreFileCreate,
    StoreFileUpdate,
    VectorStoreCreate,
    VectorStoreUpdate,
    queries,
)
from convostack.vector_stores.search import Searcher
from convostack.vector_stores.service import VectorStoreService


def _service(request: Request) -> VectorStoreService:
    service: VectorStoreService = request.app.state.stack.vector_stores
    return service


def _ids(request: Request) -> tuple[str, str]:
    return principal(request), request.path_params["vector_store_id"]


def _page_args(request: Request) -> dict[str, Any]:
    return {
        "after": request.query_params.get("after") or None,
        "limit": query_int(request, "limit", 20, 1, 100),
        "order": cast(Order, query_choice(request, "order", ("asc", "desc"), "desc")),
    }


def _list(data: list[dict[str, Any]], has_more: bool) -> Response:
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return json_response(
        {"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": has_more}
    )


async def create_store(request: Request) -> Response:
    body = await parse_body(request, VectorStoreCreate)
    return json_response(await _service(request).create(principal(request), body))


async def list_stores(request: Request) -> Response:
    return _list(*await _service(request).list_stores(principal(request), **_page_args(request)))


async def retrieve_store(request: Request) -> Response:
    return json_response(await _service(request).retrieve(*_ids(request)))


async def update_store(request: Request) -> Response:
    body = await parse_body(request, VectorStoreUpdate)
    return json_response(await _service(request).update(*_ids(request), body))


async def delete_store(request: Request) -> Response:
    return json_response(await _service(request).delete(*_ids(request)))


async def search(request: Request) -> Response:
    body = await parse_body(request, SearchRequest)
    asked = queries(body.query)
    if body.filters is not None:
        check_filter(body.filters)
    searcher: Searcher = request.app.state.stack.searcher
    owner, vector_store_id = _ids(request)
    data = await searcher.search(
        owner, vector_store_id, asked, max_results=body.max_num_results, filters=body.filters,
        ranking=body.ranking_options,
    )  # fmt: skip
    return json_response({"object": "vector_store.search_results.page", "search_query": asked,
                          "data": data, "has_more": False, "next_page": None})  # fmt: skip


async def create_file(request: Request) -> Response:
    body = await parse_body(request, StoreFileCreate)
    return json_response(await _service(request).add_file(*_ids(request), body))


def _status(request: Request) -> str | None:
    raw = request.query_params.get("filter")
    return None if raw is None else query_choice(request, "filter", STATUSES, "")


async def list_files(request: Request) -> Response:
    return _list(*await _service(request).list_files(
        *_ids(request), status=_status(request), **_page_args(request)
    ))  # fmt: skip


async def retrieve_file(request: Request) -> Response:
    file_id = request.path_params["file_id"]
    return json_response(await _service(request).get_file(*_ids(request), file_id))


async def update_file(request: Request) -> Response:
    body = await parse_body(request, StoreFileUpdate)
    file_id = request.path_params["file_id"]
    return json_response(
        await _service(request).update_file(*_ids(request), file_id, body.attributes)
    )


async def delete_file(request: Request) -> Response:
    file_id = request.path_params["file_id"]
    return json_response(await _service(request).delete_file(*_ids(request), file_id))


async def file_content(request: Request) -> Response:
    file_id = request.path_params["file_id"]
    data = await _service(request).file_content(*_ids(request), file_id)
    return json_response({"object": "vector_store.file_content.page", "data": data,
                          "has_more": False, "next_page": None})  # fmt: skip


async def create_batch(request: Request) -> Response:
    body = await parse_body(request, BatchCreate)
    return json_response(await _service(request).create_batch(*_ids(request), body))


async def retrieve_batch(request: Request) -> Response:
    batch_id = request.path_params["batch_id"]
    return json_response(await _service(request).get_batch(*_ids(request), batch_id))


async def cancel_batch(request: Request) -> Response:
    batch_id = request.path_params["batch_id"]
    return json_response(await _service(request).cancel_batch(*_ids(request), batch_id))


async def batch_files(request: Request) -> Response:
    return _list(*await _service(request).list_files(
        *_ids(request), status=_status(request), batch_id=request.path_params["batch_id"],
        **_page_args(request),
    ))  # fmt: skip


_STORE = "/v1/vector_stores/{vector_store_id}"
routes = [
    Route("/v1/vector_stores", create_store, ("POST",)),
    Route("/v1/vector_stores", list_stores, ("GET",)),
    Route(_STORE, retrieve_store, ("GET",)),
    Route(_STORE, update_store, ("POST",)),
    Route(_STORE, delete_store, ("DELETE",)),
    Route(f"{_STORE}/search", search, ("POST",)),
    Route(f"{_STORE}/files", create_file, ("POST",)),
    Route(f"{_STORE}/files", list_files, ("GET",)),
    Route(f"{_STORE}/files/{{file_id}}", retrieve_file, ("GET",)),
    Route(f"{_STORE}/files/{{file_id}}", update_file, ("POST",)),
    Route(f"{_STORE}/files/{{file_id}}", delete_file, ("DELETE",)),
    Route(f"{_STORE}/files/{{file_id}}/content", file_content, ("GET",)),
    Route(f"{_STORE}/file_batches", create_batch, ("POST",)),
    Route(f"{_STORE}/file_batches/{{batch_id}}", retrieve_batch, ("GET",)),
    Route(f"{_STORE}/file_batches/{{batch_id}}/cancel", cancel_batch, ("POST",)),
    Route(f"{_STORE}/file_batches/{{batch_id}}/files", batch_files, ("GET",)),
]
