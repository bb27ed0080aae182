"""Turning a pydantic ValidationError into one OpenAI-style 400.

OpenAI answers a bad request with a single error whose `param` is a dotted, indexed path
(`items[0].content[0].type`) and whose `code` says what kind of mistake it was. pydantic
reports every failing union branch, with branch labels in the location; we pick the
error that got deepest into the input (the branch the caller meant) and drop the labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from convostack.errors import InvalidRequestError

# Location entries pydantic adds for union branches rather than for fields.
_BRANCH_LABELS = frozenset({"str", "int", "float", "bool", "none", "dict", "list", "bytes"})

# Tags of our own discriminated unions; they appear in a location after a list index.
UNION_TAGS: set[str] = set()

_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "typed_dict_type": "an object",
    "none_required": "null",
}


def _describe(value: Any) -> str:
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


def _is_label(part: str, previous: str | int | None) -> bool:
    if part in _BRANCH_LABELS or part[:1].isupper() or "[" in part or "-" in part:
        return True
    return isinstance(previous, int) and part in UNION_TAGS


def param_path(loc: Sequence[str | int], prefix: str = "") -> str:
    """Build `a.b[0].c` from a pydantic location, without union branch labels."""
    out = prefix
    previous: str | int | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _is_label(part, previous):
            out = f"{out}.{part}" if out else part
        previous = part
    return out


def _pick(errors: list[ErrorDetails]) -> ErrorDetails:
    # The deepest error is in the branch whose shape matched the input best.
    return max(errors, key=lambda e: len(e["loc"]))


def _message(err: ErrorDetails, param: str) -> tuple[str, str]:
    kind = err["type"]
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    value = err.get("input")
    if kind == "missing":
        return "missing_required_parameter", f"Missing required parameter: '{param}'."
    if kind == "extra_forbidden":
        return "unknown_parameter", f"Unknown parameter: '{param}'."
    if kind in ("literal_error", "enum", "union_tag_invalid"):
        expected = ctx.get("expected") or ctx.get("expected_tags") or ""
        shown = value if not isinstance(value, dict) else value.get(ctx.get("discriminator", ""))
        if kind == "union_tag_invalid":
            shown = ctx.get("tag", shown)
        return (
            "invalid_value",
            f"Invalid value: '{shown}'. Supported values are: {expected}.",
        )
    if kind == "union_tag_not_found":
        return "missing_required_parameter", f"Missing required parameter: '{param}'."
    if kind == "too_long" and isinstance(value, list | tuple):
        limit = ctx.get("max_length")
        return (
            "array_above_max_length",
            f"Invalid '{param}': array too long. Expected an array with maximum length "
            f"{limit}, but got an array with length {len(value)} instead.",
        )
    if kind == "too_short" and isinstance(value, list | tuple):
        limit = ctx.get("min_length")
        return (
            "array_below_min_length",
            f"Invalid '{param}': empty array. Expected an array with minimum length "
            f"{limit}, but got an array with length {len(value)} instead.",
        )
    if kind == "string_too_long":
        limit = ctx.get("max_length")
        return (
            "string_above_max_length",
            f"Invalid '{param}': string too long. Expected a string with maximum length "
            f"{limit}, but got a string with length {len(str(value))} instead.",
        )
    if kind == "string_too_short":
        return "empty_string", f"Invalid '{param}': empty string. Expected a non-empty string."
    if kind in _TYPE_NAMES:
        return (
            "invalid_type",
            f"Invalid type for '{param}': expected {_TYPE_NAMES[kind]}, but got "
            f"{_describe(value)} instead.",
        )
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return "invalid_value", f"Invalid '{param}': {err['msg'].lower()}, got {value!r}."
    if kind == "value_error":
        return "invalid_value", f"Invalid '{param}': {ctx.get('error', err['msg'])}"
    return "invalid_value", f"Invalid '{param}': {err['msg']}."


def to_api_error(exc: ValidationError, prefix: str = "") -> InvalidRequestError:
    err = _pick(exc.errors(include_url=False))
    loc = err["loc"]
    # A union's own tag error points at the union; the caller's mistake is its `type`.
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        discriminator = str((err.get("ctx") or {}).get("discriminator", "type")).strip("'")
        loc = (*loc, discriminator)
    param = param_path(loc, prefix)
    code, message = _message(err, param or "body")
    return InvalidRequestError(message, code=code, param=param or None)
