"""Errors raised by services, turned into the OpenAI error body in one place (app.py).

Each class carries the HTTP status and the OpenAI `type`; an instance carries the
message, `code` and `param`. Services raise these and nothing else on purpose; anything
else that escapes becomes a logged 500 whose message reveals nothing internal.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import orjson


class APIError(Exception):
    """Base class: an error the client is meant to see."""

    status: int = 500
    type: ClassVar[str] = "server_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        status: int | None = None,
    ):
        super().__init__(message)
        if status is not None:
            self.status = status
        self.message = message
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def body_bytes(self) -> bytes:
        return orjson.dumps(self.body())

    def headers(self) -> dict[str, str]:
        return {}


class InvalidRequestError(APIError):
    """400: the request is malformed or breaks a documented limit."""

    status = 400
    type = "invalid_request_error"


class AuthenticationError(APIError):
    status = 401
    type = "invalid_request_error"


class NotFoundError(APIError):
    """404: unknown id, or an id that belongs to another principal (never 403)."""

    status = 404
    type = "invalid_request_error"


class MethodNotAllowedError(APIError):
    status = 405
    type = "invalid_request_error"


class PayloadTooLargeError(APIError):
    status = 413
    type = "invalid_request_error"


class RateLimitError(APIError):
    status = 429
    type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: float, code: str | None = None):
        super().__init__(message, code=code or "rate_limit_exceeded")
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        # Whole seconds, rounded up, and the milliseconds the openai client prefers.
        return {
            "retry-after": str(max(1, math.ceil(self.retry_after))),
            "retry-after-ms": str(max(1, math.ceil(self.retry_after * 1000))),
        }


class FailedDependencyError(APIError):
    """424: a server this request named (an MCP server) failed before anything ran."""

    status = 424
    type = "external_connector_error"


class InternalError(APIError):
    status = 500
    type = "server_error"


class ServiceUnavailableError(APIError):
    """503: a dependency (database, upstream) is briefly unavailable; clients retry."""

    status = 503
    type = "server_error"


def store_unavailable_message() -> str:
    return "The database is briefly unavailable; please retry."


def conversation_not_found(conversation_id: str) -> NotFoundError:
    return NotFoundError(f"Conversation with id '{conversation_id}' not found.")


def item_not_found(item_id: str) -> NotFoundError:
    return NotFoundError(f"Item with id '{item_id}' not found.")


def invalid_value(param: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(message, code="invalid_value", param=param)


def describe(value: Any) -> str:
    """What a JSON value is, in the words OpenAI's error messages use."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def invalid_type(param: str, expected: str, value: Any) -> InvalidRequestError:
    return InvalidRequestError(
        f"Invalid type for '{param}': expected {expected}, but got {describe(value)} instead.",
        code="invalid_type",
        param=param,
    )


def array_too_long(param: str, limit: Any, length: int) -> InvalidRequestError:
    return InvalidRequestError(
        f"Invalid '{param}': array too long. Expected an array with maximum length {limit}, "
        f"but got an array with length {length} instead.",
        code="array_above_max_length",
        param=param,
    )


def array_too_short(param: str, limit: Any, length: int) -> InvalidRequestError:
    return InvalidRequestError(
        f"Invalid '{param}': array too short. Expected an array with minimum length {limit}, "
        f"but got an array with length {length} instead.",
        code="array_below_min_length",
        param=param,
    )
