"""Item validation never fails in any way but a clean 400, whatever JSON it is given."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from convostack.conversations.items import normalise_item, validate_item
from convostack.errors import InvalidRequestError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
item_types = st.sampled_from(
    ["message", "function_call", "function_call_output", "reasoning", "mcp_call",
     "web_search_call", "item_reference", "computer_call", "bogus"]
)  # fmt: skip
roles = st.sampled_from(["user", "assistant", "system", "developer", "tool", "robot"])


@st.composite
def item_like(draw: st.DrawFn) -> Any:
    base = draw(st.dictionaries(st.text(max_size=12), json_values, max_size=5))
    if draw(st.booleans()):
        base["type"] = draw(item_types)
    if draw(st.booleans()):
        base["role"] = draw(roles)
    if draw(st.booleans()):
        base["content"] = draw(st.text(max_size=30) | json_values)
    return base


@settings(max_examples=400, deadline=None)
@given(raw=item_like() | json_values)
def test_any_json_is_accepted_or_rejected_with_a_400(raw: Any) -> None:
    try:
        kind = validate_item(raw, "items[0]")
    except InvalidRequestError as exc:
        error = exc
    else:
        if kind != "item_reference":
            stored = normalise_item(raw, kind)
            assert stored["type"] == kind
            assert isinstance(stored["id"], str)
        return
    assert error.status == 400
    assert error.param is not None
    assert error.param.startswith("items[0]")
    assert error.code is not None


@settings(max_examples=200, deadline=None)
@given(text=st.text(), role=st.sampled_from(["user", "system", "developer", "assistant"]))
def test_short_messages_normalise_to_one_part_keeping_the_text(text: str, role: str) -> None:
    raw = {"role": role, "content": text}
    stored = normalise_item(raw, validate_item(raw, "items[0]"))
    part = stored["content"][0]
    assert stored["status"] == "completed"
    assert stored["id"].startswith("msg_")
    assert part["text"] == text
    assert part["type"] == ("output_text" if role == "assistant" else "input_text")
    assert raw == {"role": role, "content": text}  # the caller's dict is not mutated
