"""previous_response_id chains, function tools, and the stored-response routes."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from convostack.testing.upstream import FAKE_MODEL as MODEL
from convostack.testing.upstream import Upstream

TOOLS: list[Any] = [
    {"type": "function", "name": "get_weather",
     "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}},
    {"type": "function", "name": "get_time", "description": "Local time",
     "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}},
]  # fmt: skip


def test_chain_sends_every_earlier_input_and_output(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    first = client.responses.create(model=MODEL, input="one", instructions="only once")
    second = client.responses.create(model=MODEL, input="two", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    assert second.conversation is None
    third = client.responses.create(model=MODEL, input="three", previous_response_id=second.id)
    assert upstream.last_messages() == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "echo: one [2 messages]"},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "echo: two [3 messages]"},
        {"role": "user", "content": "three"},
    ]
    assert third.output_text == "echo: three [5 messages]"


def test_parallel_function_calls_and_their_outputs_reach_the_model(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    conversation = client.conversations.create()
    response = client.responses.create(
        model=MODEL, input="call get_weather get_time", tools=TOOLS, conversation=conversation.id
    )
    calls = [item for item in response.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert all(c.id is not None and c.id.startswith("fc_") for c in calls)
    sent_tools = upstream.chat_requests()[-1]["tools"]
    assert [t["function"]["name"] for t in sent_tools] == ["get_weather", "get_time"]
    assert sent_tools[1]["function"]["description"] == "Local time"

    outputs: list[Any] = [
        {"type": "function_call_output", "call_id": c.call_id, "output": f"result {n}"}
        for n, c in enumerate(calls)
    ]
    client.responses.create(model=MODEL, input=outputs, tools=TOOLS, conversation=conversation.id)
    sent = upstream.last_messages()
    assert sent[0] == {"role": "user", "content": "call get_weather get_time"}
    assert sent[1]["role"] == "assistant"
    assert [tc["id"] for tc in sent[1]["tool_calls"]] == [c.call_id for c in calls]
    assert sent[2:] == [
        {"role": "tool", "tool_call_id": calls[0].call_id, "content": "result 0"},
        {"role": "tool", "tool_call_id": calls[1].call_id, "content": "result 1"},
    ]
    kinds = [item.type for item in client.conversations.items.list(conversation.id, order="asc")]
    assert kinds == [
        "message", "function_call", "function_call", "function_call_output",
        "function_call_output", "message",
    ]  # fmt: skip


def test_named_tool_choice_and_max_tool_calls(client: openai.OpenAI, upstream: Upstream) -> None:
    response = client.responses.create(
        model=MODEL,
        input="hello",
        tools=TOOLS,
        tool_choice={"type": "function", "name": "get_time"},
    )
    assert [item.type for item in response.output] == ["function_call"]
    choice: Any = response.tool_choice
    assert choice.model_dump(exclude_none=True) == {"type": "function", "name": "get_time"}
    sent = upstream.chat_requests()[-1]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    limited = client.responses.create(
        model=MODEL, input="call get_weather get_time", tools=TOOLS, max_tool_calls=1
    )
    assert [item.type for item in limited.output] == ["function_call"]


def test_max_output_tokens_gives_incomplete(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()
    response = client.responses.create(
        model=MODEL, input=" ".join(["word"] * 40), max_output_tokens=16,
        conversation=conversation.id,
    )  # fmt: skip
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    # An incomplete turn is still a turn: it is kept.
    assert len(client.conversations.items.list(conversation.id).data) == 2


def test_echoed_fields(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL, input="x", metadata={"k": "v"}, temperature=0.5, top_p=0.9,
        user="u1", safety_identifier="s1", prompt_cache_key="pck", truncation="auto",
        text={"format": {"type": "json_object"}}, reasoning={"effort": "low"},
        parallel_tool_calls=False, max_output_tokens=64,
    )  # fmt: skip
    assert response.metadata == {"k": "v"}
    assert (response.temperature, response.top_p) == (0.5, 0.9)
    assert (response.user, response.safety_identifier, response.prompt_cache_key) == (
        "u1", "s1", "pck"
    )  # fmt: skip
    assert response.truncation == "auto"
    assert response.text is not None
    assert response.text.format is not None
    assert response.text.format.type == "json_object"
    assert response.reasoning is not None
    assert response.reasoning.effort == "low"
    assert response.parallel_tool_calls is False
    assert response.max_output_tokens == 64
    assert response.tools == []
    assert response.tool_choice == "auto"
    assert response.error is None


def test_stored_response_routes(client: openai.OpenAI) -> None:
    items: list[Any] = [
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    response = client.responses.create(model=MODEL, input=items)
    retrieved = client.responses.retrieve(response.id)
    assert retrieved.model_dump() == response.model_dump()

    listed = list(client.responses.input_items.list(response.id, limit=2))
    assert [getattr(i.content[0], "text", None) for i in listed if i.type == "message"] == [
        "c", "b", "a"
    ]  # fmt: skip
    ascending = list(client.responses.input_items.list(response.id, order="asc"))
    assert [i.id for i in ascending] == [i.id for i in listed][::-1]
    assert all(i.id is not None and i.id.startswith("msg_") for i in ascending)

    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(response.id)
    assert caught.value.message.endswith(f"Response with id '{response.id}' not found.")
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(response.id)
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model=MODEL, input="x", previous_response_id=response.id)
    assert bad.value.code == "previous_response_not_found"


def test_list_responses_extension(client: openai.OpenAI) -> None:
    made = [client.responses.create(model=MODEL, input=f"r{n}").id for n in range(3)]
    page = client.get(
        "/responses", cast_to=object, options={"params": {"limit": 100, "model": MODEL}}
    )
    assert isinstance(page, dict)
    ids = [r["id"] for r in page["data"]]
    assert ids[:3] == made[::-1]
    assert page["object"] == "list"
