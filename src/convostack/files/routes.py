"""HTTP routes of the Files API. An upload is multipart, read through a bounded stream:
past the setting max_file_bytes it is refused with 413 before more is read."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import cast

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import Response

from convostack.errors import InvalidRequestError, PayloadTooLargeError
from convostack.files.service import FileService
from convostack.http import json_response, principal, query_choice, query_int
from convostack.routing import Route
from convostack.storage.base import Order

# Room for the form's other fields and the multipart framing around the file.
FORM_OVERHEAD_BYTES = 64 * 1024


def _service(request: Request) -> FileService:
    service: FileService = request.app.state.stack.files
    return service


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"File too large: the limit is {limit} bytes (setting max_file_bytes).",
        code="file_too_large",
        param="file",
    )


async def _bounded(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit + FORM_OVERHEAD_BYTES:
            raise _too_large(limit)
        yield chunk


async def create_file(request: Request) -> Response:
    limit: int = request.app.state.stack.config.max_file_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + FORM_OVERHEAD_BYTES:
        raise _too_large(limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequestError(
            "Uploads are multipart/form-data with the fields 'file' and 'purpose'.",
            code="invalid_content_type",
        )
    parser = MultiPartParser(request.headers, _bounded(request, limit), max_files=1, max_fields=8)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequestError(f"Invalid multipart body: {exc.message}") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequestError(
                "Missing required parameter: 'file'.",
                code="missing_required_parameter",
                param="file",
            )
        data = await upload.read()
        if len(data) > limit:
            raise _too_large(limit)

        def field(name: str) -> str | None:
            value = form.get(name)
            return value if isinstance(value, str) else None

        created = await _service(request).create(
            principal(request),
            filename=upload.filename or "file",
            content_type=upload.content_type,
            data=data,
            purpose=field("purpose") or "",
            expires=(field("expires_after[anchor]"), field("expires_after[seconds]")),
        )
    finally:
        await form.close()
    return json_response(created)


async def list_files(request: Request) -> Response:
    limit = query_int(request, "limit", 10000, 1, 10000)
    order = cast(Order, query_choice(request, "order", ("asc", "desc"), "desc"))
    data, has_more = await _service(request).list_files(
        principal(request), after=request.query_params.get("after") or None, limit=limit,
        order=order, purpose=request.query_params.get("purpose") or None,
    )  # fmt: skip
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return json_response(
        {"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": has_more}
    )


async def retrieve_file(request: Request) -> Response:
    return json_response(
        await _service(request).retrieve(principal(request), request.path_params["file_id"])
    )


async def file_content(request: Request) -> Response:
    found = await _service(request).content(principal(request), request.path_params["file_id"])
    return Response(found.data, media_type=found.content_type or "application/octet-stream")


async def delete_file(request: Request) -> Response:
    return json_response(
        await _service(request).delete(principal(request), request.path_params["file_id"])
    )


routes = [
    Route("/v1/files", create_file, ("POST",)),
    Route("/v1/files", list_files, ("GET",)),
    Route("/v1/files/{file_id}", retrieve_file, ("GET",)),
    Route("/v1/files/{file_id}", delete_file, ("DELETE",)),
    Route("/v1/files/{file_id}/content", file_content, ("GET",)),
]
