"""Attribute filters: shapes refused with the field named, and how values compare."""

from __future__ import annotations

from typing import Any

import pytest

from convostack.errors import InvalidRequestError
from convostack.vector_stores.filters import check_filter, matches

ATTRS = {"topic": "rivers", "rank": 2, "public": True}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"type": "eq", "key": "topic", "value": "rivers"}, True),
        ({"type": "eq", "key": "public", "value": 1}, False),  # a boolean is not a number
        ({"type": "ne", "key": "missing", "value": "x"}, True),
        ({"type": "gt", "key": "rank", "value": 1.5}, True),
        ({"type": "lte", "key": "topic", "value": "a"}, False),
        ({"type": "gt", "key": "topic", "value": 1}, False),  # a string is not ordered by numbers
        ({"type": "in", "key": "rank", "value": [1, 2]}, True),
        ({"type": "nin", "key": "topic", "value": ["rivers"]}, False),
        ({"type": "and", "filters": [{"type": "eq", "key": "public", "value": True},
                                     {"type": "lt", "key": "rank", "value": 2}]}, False),
        ({"type": "or", "filters": [{"type": "eq", "key": "public", "value": False},
                                    {"type": "gte", "key": "rank", "value": 2}]}, True),
    ],
)  # fmt: skip
def test_matches(value: dict[str, Any], expected: bool) -> None:
    check_filter(value)
    assert matches(value, ATTRS) is expected


@pytest.mark.parametrize(
    ("value", "param"),
    [
        ([], "filters"),
        ({"type": "eq", "key": "a", "value": 1, "extra": 2}, "filters.extra"),
        ({"type": "and", "filters": [{"type": "or", "filters": "x"}]},
         "filters.filters[0].filters"),
        ({"type": "nin", "key": "a", "value": [{"x": 1}]}, "filters.value"),
    ],
)  # fmt: skip
def test_wrong_shapes_name_the_field(value: Any, param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        check_filter(value)
    assert caught.value.param == param
