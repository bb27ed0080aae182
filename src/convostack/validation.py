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

from convostack.errors import InvalidRequestError, array_too_long, array_too_short, invalid_type

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


def _error(err: ErrorDetails, param: str) -> InvalidRequestError:
    kind = err["type"]
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    value = err.get("input")
    if kind in ("missing", "union_tag_not_found"):
        return _invalid(
            f"Missing required parameter: '{param}'.", "missing_required_parameter", param
        )
    if kind == "extra_forbidden":
        return _invalid(f"Unknown parameter: '{param}'.", "unknown_parameter", param)
    if kind in ("literal_error", "enum", "union_tag_invalid"):
        expected = ctx.get("expected") or ctx.get("expected_tags") or ""
        shown = ctx.get("tag", value) if kind == "union_tag_invalid" else value
        return _invalid(f"Invalid value: '{shown}'. Supported values are: {expected}.",
                        "invalid_value", param)  # fmt: skip
    if kind == "too_long" and isinstance(value, list | tuple):
        return array_too_long(param, ctx.get("max_length"), len(value))
    if kind == "too_short" and isinstance(value, list | tuple):
        return array_too_short(param, ctx.get("min_length"), len(value))
    if kind == "string_too_long":
        return _invalid(
            f"Invalid '{param}': string too long. Expected a string with maximum length "
            f"{ctx.get('max_length')}, but got a string with length {len(str(value))} instead.",
            "string_above_max_length", param,
        )  # fmt: skip
    if kind == "string_too_short":
        return _invalid(f"Invalid '{param}': empty string. Expected a non-empty string.",
                        "empty_string", param)  # fmt: skip
    if kind in _TYPE_NAMES:
        return invalid_type(param, _TYPE_NAMES[kind], value)
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return _invalid(f"Invalid '{param}': {err['msg'].lower()}, got {value!r}.",
                        "invalid_value", param)  # fmt: skip
    if kind == "value_error":
        return _invalid(
            f"Invalid '{param}': {ctx.get('error', err['msg'])}", "invalid_value", param
        )
    return _invalid(f"Invalid '{param}': {err['msg']}.", "invalid_value", param)


def _invalid(message: str, code: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(message, code=code, param=param or None)


def to_api_error(exc: ValidationError, prefix: str = "") -> InvalidRequestError:
    err = _pick(exc.errors(include_url=False))
    loc = err["loc"]
    # A union's own tag error points at the union; the caller's mistake is its `type`.
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        discriminator = str((err.get("ctx") or {}).get("discriminator", "type")).strip("'")
        loc = (*loc, discriminator)
    param = param_path(loc, prefix)
    error = _error(err, param or "body")
    error.param = param or None
    return error
