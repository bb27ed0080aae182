"""Attribute filters of search and file_search: comparison (`eq`, `ne`, `gt`, `gte`, `lt`,
`lte`, `in`, `nin`) and compound (`and`, `or`), checked once (a 400 names the field that
is wrong) and then applied to each file's attributes."""

from __future__ import annotations

from typing import Any

from convostack.errors import InvalidRequestError, invalid_type

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
COMPOUNDS = ("and", "or")
MAX_DEPTH = 8


def check_filter(value: Any, param: str = "filters", depth: int = 0) -> None:
    if not isinstance(value, dict):
        raise invalid_type(param, "an object", value)
    kind = value.get("type")
    if depth > MAX_DEPTH:
        raise InvalidRequestError(
            f"Invalid '{param}': filters nest at most {MAX_DEPTH} deep.",
            code="invalid_value", param=param,
        )  # fmt: skip
    if kind in COMPOUNDS:
        extra = set(value) - {"type", "filters"}
        nested = value.get("filters")
        if extra:
            raise _unknown(param, extra)
        if not isinstance(nested, list) or not nested:
            raise invalid_type(f"{param}.filters", "a non-empty array of filters", nested)
        for n, inner in enumerate(nested):
            check_filter(inner, f"{param}.filters[{n}]", depth + 1)
        return
    if kind not in COMPARISONS:
        raise InvalidRequestError(
            f"Invalid '{param}.type': '{kind}'. Supported values are: "
            f"{', '.join(COMPARISONS + COMPOUNDS)}.",
            code="invalid_value", param=f"{param}.type",
        )  # fmt: skip
    extra = set(value) - {"type", "key", "value"}
    if extra:
        raise _unknown(param, extra)
    if not isinstance(value.get("key"), str):
        raise invalid_type(f"{param}.key", "a string", value.get("key"))
    operand = value.get("value", None)
    if kind in ("in", "nin"):
        if not isinstance(operand, list) or not all(_scalar(v) for v in operand):
            raise invalid_type(f"{param}.value", "an array of strings or numbers", operand)
    elif not _scalar(operand):
        raise invalid_type(f"{param}.value", "a string, number or boolean", operand)


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _unknown(param: str, extra: set[str]) -> InvalidRequestError:
    name = sorted(extra)[0]
    return InvalidRequestError(
        f"Unknown parameter: '{param}.{name}'.", code="unknown_parameter", param=f"{param}.{name}"
    )


def matches(value: Any, attributes: dict[str, Any]) -> bool:
    """Whether attributes pass a checked filter (None passes everything). A comparison
    on a missing key, or of values of different kinds, is false (`ne`, `nin`: true)."""
    if value is None:
        return True
    kind = value["type"]
    if kind == "and":
        return all(matches(f, attributes) for f in value["filters"])
    if kind == "or":
        return any(matches(f, attributes) for f in value["filters"])
    negated = kind in ("ne", "nin")
    if value["key"] not in attributes:
        return negated
    have, want = attributes[value["key"]], value["value"]
    if kind in ("in", "nin"):
        return any(_same_kind(have, w) and have == w for w in want) != negated
    if not _same_kind(have, want):
        return negated
    if kind in ("eq", "ne"):
        return bool(have == want) != negated
    if isinstance(have, bool):
        return False  # booleans are equal or not, never ordered
    return bool(
        {"gt": have > want, "gte": have >= want, "lt": have < want, "lte": have <= want}[kind]
    )


def _same_kind(a: Any, b: Any) -> bool:
    """Both booleans, both numbers (not booleans), or both strings."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    numbers = (int, float)
    return (isinstance(a, numbers) and isinstance(b, numbers)) or (
        isinstance(a, str) and isinstance(b, str)
    )
