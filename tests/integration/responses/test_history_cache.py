"""A conversation's history is kept between turns (`responses/history_cache.py`); what the
model receives is always the conversation as it is now: items deleted or added through
the Items API between two turns, tool calls whose results come in the next turn, and
chains, checked by the requests the fake upstream received."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from convostack.testing.upstream import FAKE_MODEL as MODEL
from convostack.testing.upstream import Upstream, listed_texts, text_of

TOOLS: list[Any] = [
    {"type": "function", "name": "lookup",
     "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}},
]  # fmt: skip


def _turn(client: openai.OpenAI, conversation_id: str, text: str) -> None:
    client.responses.create(model=MODEL, input=text, conversation=conversation_id)


def test_items_deleted_and_added_between_turns_reach_the_model_as_they_are_now(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    conversation = client.conversations.create(
        items=[{"role": "user", "content": f"seed {n}"} for n in range(3)]
    )
    for n in range(3):  # the history is kept after these
        _turn(client, conversation.id, f"turn {n}")
        assert upstream.last_texts() == [*listed_texts(client, conversation.id)[:-2], f"turn {n}"]
    items = client.conversations.items.list(conversation.id, order="asc").data
    # A deleted item, in the middle of what was kept, is not sent again.
    assert items[4].id is not None
    assert text_of(getattr(items[4], "content", "")) == "echo: turn 0 [4 messages]"
    client.conversations.items.delete(items[4].id, conversation_id=conversation.id)
    _turn(client, conversation.id, "after a delete")
    listed = listed_texts(client, conversation.id)
    assert upstream.last_texts() == [*listed[:-2], "after a delete"]
    assert "echo: turn 0 [4 messages]" not in upstream.last_texts()
    # An item added through the Items API is sent, in its place.
    client.conversations.items.create(
        conversation.id, items=[{"role": "user", "content": "added by hand"}]
    )
    _turn(client, conversation.id, "after an add")
    assert upstream.last_texts() == [*listed, "added by hand", "after an add"]
    # The newest item deleted: the history ends before it.
    newest = client.conversations.items.list(conversation.id, order="desc", limit=1).data[0]
    assert newest.id is not None
    client.conversations.items.delete(newest.id, conversation_id=conversation.id)
    _turn(client, conversation.id, "after the newest went")
    assert upstream.last_texts() == [*listed, "added by hand", "after an add",
                                     "after the newest went"]  # fmt: skip
    # Several turns later, still the conversation as listed.
    _turn(client, conversation.id, "last")
    assert upstream.last_texts() == [*listed_texts(client, conversation.id)[:-2], "last"]


def test_calls_and_reasoning_kept_in_one_turn_are_answered_in_the_next(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    conversation = client.conversations.create()
    _turn(client, conversation.id, "think first")
    _turn(client, conversation.id, "plain")
    response = client.responses.create(
        model=MODEL, input="call lookup", tools=TOOLS, conversation=conversation.id
    )
    (call,) = [item for item in response.output if item.type == "function_call"]
    # The conversation ends with the call: its result arrives in the next turn's input.
    client.responses.create(
        model=MODEL,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "found"}],
        tools=TOOLS,
        conversation=conversation.id,
    )
    sent = upstream.last_messages()
    assert [m["role"] for m in sent] == [
        "user", "assistant", "user", "assistant", "user", "assistant", "tool",
    ]  # fmt: skip
    assert sent[1]["reasoning_content"]  # the first turn's reasoning, with its answer
    assert [c["id"] for c in sent[5]["tool_calls"]] == [call.call_id]
    assert sent[6] == {"role": "tool", "tool_call_id": call.call_id, "content": "found"}
    # The result deleted through the Items API: the call is still shown, the result not.
    items = client.conversations.items.list(conversation.id, order="asc").data
    (result,) = [item for item in items if item.type == "function_call_output"]
    assert result.id is not None
    client.conversations.items.delete(result.id, conversation_id=conversation.id)
    _turn(client, conversation.id, "again")
    roles = [m["role"] for m in upstream.last_messages()]
    assert roles == ["user", "assistant", "user", "assistant", "user", "assistant",
                     "assistant", "user"]  # fmt: skip


def test_a_chain_sends_what_its_responses_hold_now(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    first = client.responses.create(model=MODEL, input="one")
    second = client.responses.create(model=MODEL, input="two", previous_response_id=first.id)
    third = client.responses.create(model=MODEL, input="three", previous_response_id=second.id)
    client.responses.create(model=MODEL, input="four", previous_response_id=third.id)
    assert upstream.last_texts() == [
        "one", "echo: one [1 messages]", "two", "echo: two [3 messages]",
        "three", "echo: three [5 messages]", "four",
    ]  # fmt: skip
    # A deleted ancestor ends the chain: what came before it is no longer sent.
    client.responses.delete(second.id)
    client.responses.create(model=MODEL, input="five", previous_response_id=third.id)
    assert upstream.last_texts() == ["three", "echo: three [5 messages]", "five"]


def test_a_chain_kept_across_turns_carries_calls_and_branches(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    first = client.responses.create(model=MODEL, input="think hard")
    second = client.responses.create(
        model=MODEL, input="call lookup", tools=TOOLS, previous_response_id=first.id
    )
    (call,) = [item for item in second.output if item.type == "function_call"]
    result: Any = [{"type": "function_call_output", "call_id": call.call_id, "output": "found"}]
    third = client.responses.create(
        model=MODEL, input=result, tools=TOOLS, previous_response_id=second.id
    )
    sent = upstream.last_messages()
    assert [m["role"] for m in sent] == ["user", "assistant", "user", "assistant", "tool"]
    assert sent[1]["reasoning_content"]
    assert sent[4] == {"role": "tool", "tool_call_id": call.call_id, "content": "found"}
    # Two turns from the same response (a branch) see the same history.
    for text in ("left", "right"):
        client.responses.create(model=MODEL, input=text, previous_response_id=third.id)
        assert upstream.last_texts()[-1] == text
        assert len(upstream.last_messages()) == 7
    # The newest response of a kept chain deleted: continuing from it is a 404.
    client.responses.delete(third.id)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model=MODEL, input="gone", previous_response_id=third.id)
    client.responses.create(model=MODEL, input="from second", previous_response_id=second.id)
    assert [m["role"] for m in upstream.last_messages()] == [
        "user", "assistant", "user", "assistant", "user",
    ]  # fmt: skip
