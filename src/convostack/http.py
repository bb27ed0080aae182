"""What every route needs from HTTP: a body parsed into a model, query values, JSON out."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from convostack.errors import InvalidRequestError, PayloadTooLargeError
from convostack.validation import to_api_error

M = TypeVar("M", bound=BaseModel)

JSON = "application/json"
DEFAULT_PRINCIPAL = "default"
# The key under which authentication leaves the caller's principal in the ASGI scope.
PRINCIPAL_SCOPE_KEY = "convostack.principal"
MAX_BODY_SCOPE_KEY = "convostack.max_body_bytes"

_BAD_JSON = (
    "We could not parse the JSON body of your request. The server expects a JSON object; "
    "check that the body is valid JSON and that Content-Type is application/json."
)


def principal(request: Request) -> str:
    value: str = request.scope.get(PRINCIPAL_SCOPE_KEY, DEFAULT_PRINCIPAL)
    return value


async def read_body(request: Request) -> bytes:
    """The raw body, refused with 413 as soon as it passes the configured size."""
    limit: int = request.scope.get(MAX_BODY_SCOPE_KEY, 1 << 62)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"Request body too large: the limit is {limit} bytes.", code="request_too_large"
    )


async def parse_body(request: Request, model: type[M]) -> M:
    return parse_json(await read_body(request), model)


def parse_json(body: bytes, model: type[M]) -> M:
    """A JSON body as `model`, or the 400 that names what is wrong with it."""
    if not body.strip():
        body = b"{}"
    try:
        parsed = model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            raise InvalidRequestError(_BAD_JSON) from None
        if first["type"] == "model_type" and not first["loc"]:
            raise InvalidRequestError(
                "The request body must be a JSON object.", code="invalid_type"
            ) from None
        raise to_api_error(exc) from None
    check_integers(body)
    return parsed


# JSON integers must fit the 64 bits our encoder (orjson) writes: -2**63 to 2**64 - 1. A
# body that could hold a larger one (it has a run of 19 digits) is parsed again to look.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_INT_RANGE = (-(2**63), 2**64 - 1)


def check_integers(body: bytes) -> None:
    """Refuse an integer beyond 64 bits anywhere in the body, with a 400 naming it, rather
    than fail with a 500 wherever the value would next be written out."""
    if _LONG_DIGITS.search(body) is None:
        return
    try:
        value = json.loads(body)
    except RecursionError:
        return  # nested deeper than pydantic parses, so already refused
    except ValueError:
        raise InvalidRequestError(_BAD_JSON) from None
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{n}]") for n, v in enumerate(node))
        elif type(node) is int and not _INT_RANGE[0] <= node <= _INT_RANGE[1]:
            param = path or None
            raise InvalidRequestError(
                f"Invalid '{path or 'body'}': integer out of range. Integers must be between "
                f"{_INT_RANGE[0]} and {_INT_RANGE[1]}.",
                code="integer_out_of_range",
                param=param,
            )


def json_response(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type=JSON)


def list_page_bytes(bodies: Iterable[bytes], first_id: str, last_id: str, has_more: bool) -> bytes:
    """A `list` object around item bodies that are already JSON: no parse, no re-encode."""
    return b"".join(
        (
            b'{"object":"list","data":[',
            b",".join(bodies),
            b'],"first_id":',
            orjson.dumps(first_id),
            b',"last_id":',
            orjson.dumps(last_id),
            b',"has_more":',
            b"true" if has_more else b"false",
            b"}",
        )
    )


def query_list(request: Request, name: str) -> list[str]:
    """A repeated query value, in the client's bracket form (`include[]=a`) or plain."""
    params = request.query_params
    return params.getlist(f"{name}[]") + params.getlist(name)


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequestError(
            f"Invalid type for '{name}': expected an integer, but got '{raw[:64]}' instead.",
            code="invalid_type",
            param=name,
        ) from None
    if not low <= value <= high:
        raise InvalidRequestError(
            f"Invalid '{name}': integer out of range. Expected a value between {low} and "
            f"{high}, but got {value} instead.",
            code="integer_out_of_range",
            param=name,
        )
    return value


def query_choice(request: Request, name: str, choices: tuple[str, ...], default: str) -> str:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw not in choices:
        supported = ", ".join(f"'{c}'" for c in choices)
        raise InvalidRequestError(
            f"Invalid value: '{raw[:64]}'. Supported values are: {supported}.",
            code="invalid_value",
            param=name,
        )
    return raw
