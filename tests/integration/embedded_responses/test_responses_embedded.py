"""Responses against the default provider, the embedded model, through record/replay:
in CI the model output is replayed from tests/integration/recordings, so no model loads;
`--inference-mode=record` re-records it from the real model."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest


def _kinds(client: openai.OpenAI, conversation_id: str) -> list[tuple[str, str | None]]:
    return [
        (item.type, getattr(item, "role", None))
        for item in client.conversations.items.list(conversation_id, order="asc")
    ]


def test_turns_on_a_conversation(client: openai.OpenAI, text_model_id: str) -> None:
    conversation = client.conversations.create(
        items=[{"role": "user", "content": "My name is Ada."}]
    )
    first = client.responses.create(
        model=text_model_id, input="What is my name?", conversation=conversation.id,
        temperature=0, max_output_tokens=32,
    )  # fmt: skip
    assert first.status in ("completed", "incomplete")
    assert first.output_text.strip() != ""
    assert first.model == text_model_id
    assert first.usage is not None
    assert first.usage.input_tokens > 0
    assert first.usage.output_tokens > 0
    second = client.responses.create(
        model=text_model_id, input="Say it again.", conversation=conversation.id,
        temperature=0, max_output_tokens=32,
    )  # fmt: skip
    assert second.output_text.strip() != ""
    assert _kinds(client, conversation.id) == [
        ("message", "user"), ("message", "user"), ("message", "assistant"),
        ("message", "user"), ("message", "assistant"),
    ]  # fmt: skip


def test_stream_helper(client: openai.OpenAI, text_model_id: str) -> None:
    conversation = client.conversations.create()
    with client.responses.stream(
        model=text_model_id, input="Name one colour, in one word.",
        conversation=conversation.id, temperature=0, max_output_tokens=256,
    ) as stream:  # fmt: skip
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert len(deltas) > 1  # token by token
    assert "".join(deltas) == final.output_text
    stored = client.responses.retrieve(final.id)
    assert stored.output_text == final.output_text
    assert stored.id == final.id
    assert len(client.conversations.items.list(conversation.id).data) == 2


def test_previous_response_chain(client: openai.OpenAI, text_model_id: str) -> None:
    first = client.responses.create(
        model=text_model_id, input="Remember the number 7.", temperature=0, max_output_tokens=24
    )
    second = client.responses.create(
        model=text_model_id, input="What number?", previous_response_id=first.id,
        temperature=0, max_output_tokens=24,
    )  # fmt: skip
    assert second.previous_response_id == first.id
    assert second.output_text.strip() != ""
    inputs = list(client.responses.input_items.list(second.id))
    assert len(inputs) == 1  # only this response's own input


def test_named_tool_choice_gives_valid_arguments(client: openai.OpenAI, text_model_id: str) -> None:
    tools: list[Any] = [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        }
    ]
    conversation = client.conversations.create()
    response = client.responses.create(
        model=text_model_id, input="What is the weather in Paris?", tools=tools,
        tool_choice={"type": "function", "name": "get_weather"},
        conversation=conversation.id, temperature=0,
    )  # fmt: skip
    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) >= 1
    call = calls[0]
    assert call.name == "get_weather"
    arguments = json.loads(call.arguments)
    assert isinstance(arguments.get("city"), str)
    # The tool's result goes back in the next turn, on the same conversation.
    follow = client.responses.create(
        model=text_model_id, conversation=conversation.id, temperature=0, max_output_tokens=32,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21C"}],
    )  # fmt: skip
    assert follow.status in ("completed", "incomplete")
    kinds = [kind for kind, _ in _kinds(client, conversation.id)]
    assert kinds[:2] == ["message", "function_call"]
    assert "function_call_output" in kinds


def test_seed_script_responses_part(client: openai.OpenAI, text_model_id: str) -> None:
    conversation = client.conversations.create()
    response = client.responses.create(
        model=text_model_id,
        input=[{"role": "user", "content": "What are the 5 Ds of dodgeball?"}],
        conversation=conversation.id,
        temperature=0,
        max_output_tokens=64,
    )
    assert response.conversation is not None
    assert response.conversation.id == conversation.id
    for word in ("second", "third"):
        client.responses.create(
            model=text_model_id,
            input=[{"role": "user", "content":
                    f"Repeat what you just said but add 'this is my {word} time saying this'"}],
            conversation=conversation.id, temperature=0, max_output_tokens=64,
        )  # fmt: skip
    assert len(client.conversations.items.list(conversation.id).data) == 6
    with pytest.raises(openai.NotFoundError):
        client.responses.create(
            model=text_model_id, input=[{"role": "user", "content": "say hello"}],
            conversation="conv_zzzzzzzzz5dc81908289d62779d2ac510a2b0b602ef00a44",
        )  # fmt: skip


def test_custom_and_namespace_tools(client: openai.OpenAI, text_model_id: str) -> None:
    """A forced call of a custom tool and of a namespaced function: the engine's own
    constrained decoding gives `{"input": ...}` and the schema's arguments."""
    note: Any = {"type": "custom", "name": "note", "description": "Write a short note"}
    crm: Any = {
        "type": "namespace", "name": "crm", "description": "Customer records",
        "tools": [{"type": "function", "name": "get_customer", "description": "Find a customer",
                   "parameters": {"type": "object", "properties": {"name": {"type": "string"}},
                                  "required": ["name"], "additionalProperties": False}}],
    }  # fmt: skip
    custom = client.responses.create(
        model=text_model_id, input="Note that Ada called.", tools=[note, crm], temperature=0,
        tool_choice={"type": "custom", "name": "note"}, max_output_tokens=48,
    )  # fmt: skip
    (call,) = [item for item in custom.output if item.type == "custom_tool_call"]
    assert call.name == "note"
    assert isinstance(call.input, str)
    choice: Any = {"type": "function", "name": "get_customer", "namespace": "crm"}
    namespaced = client.responses.create(
        model=text_model_id, input="Find the customer Ada.", tools=[note, crm], temperature=0,
        tool_choice=choice, max_output_tokens=48,
    )  # fmt: skip
    (found,) = [item for item in namespaced.output if item.type == "function_call"]
    assert (found.name, found.namespace) == ("get_customer", "crm")
    assert isinstance(json.loads(found.arguments).get("name"), str)
