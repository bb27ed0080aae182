"""Streaming: the full ordered event sequence, accepted by the openai stream helper."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest

from convostack.testing.upstream import FAKE_MODEL as MODEL

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
}


def _without_parsed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_parsed(v) for k, v in value.items() if k != "parsed"}
    if isinstance(value, list):
        return [_without_parsed(v) for v in value]
    return value


def test_text_stream_has_every_event_in_order(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()
    events = list(
        client.responses.create(
            model=MODEL, input="hello", conversation=conversation.id, stream=True
        )
    )
    types = [e.type for e in events]
    deltas = types.count("response.output_text.delta")
    assert deltas >= 2
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    ids = {e.response.id for e in events if hasattr(e, "response")}
    assert len(ids) == 1
    added, done = events[2], events[-2]
    assert added.type == "response.output_item.added"
    assert done.type == "response.output_item.done"
    assert added.item.id == done.item.id
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "echo: hello [1 messages]"
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == text


def test_stream_helper_final_response_equals_retrieve(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()
    with client.responses.stream(
        model=MODEL, input="hi there", conversation=conversation.id
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == "echo: hi there [1 messages]"
    stored = client.responses.retrieve(final.id)
    # The helper adds a client-side `parsed` to each text part; the rest must be equal.
    assert _without_parsed(stored.model_dump()) == _without_parsed(final.model_dump())
    # The conversation was written before the terminal event.
    assert len(client.conversations.items.list(conversation.id).data) == 2


def test_function_call_stream(client: openai.OpenAI) -> None:
    tools: list[Any] = [WEATHER]
    events: list[Any] = list(
        client.responses.create(
            model=MODEL, input="call get_weather Paris", tools=tools, stream=True
        )
    )
    types = [e.type for e in events]
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert "response.function_call_arguments.delta" in types
    assert types[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1]
    assert final.type == "response.completed"
    [call] = final.response.output
    assert call.type == "function_call"
    assert call.name == "get_weather"
    assert call.id.startswith("fc_")
    assert call.call_id.startswith("call_")
    assert call.arguments == '{"text":"call get_weather Paris"}'


def test_retrieve_with_stream_replays_events(client: openai.OpenAI, http: httpx2.Client) -> None:
    response = client.responses.create(model=MODEL, input="replay me")
    replayed = list(client.responses.retrieve(response.id, stream=True))
    assert replayed[0].type == "response.created"
    assert replayed[-1].type == "response.completed"
    assert [e.sequence_number for e in replayed] == list(range(len(replayed)))
    later = list(client.responses.retrieve(response.id, stream=True, starting_after=3))
    assert [e.sequence_number for e in later] == list(range(4, len(replayed)))
    raw = http.get(f"/v1/responses/{response.id}", params={"stream": "true"})
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.startswith("event: response.created\ndata: ")


def test_errors_before_the_stream_are_real_http_errors(client: openai.OpenAI) -> None:
    missing = "conv_zzzzzzzzz5dc81908289d62779d2ac510a2b0b602ef00a44"
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=MODEL, input="x", conversation=missing, stream=True)
    assert caught.value.status_code == 404
    assert caught.value.message.endswith(f"Conversation with id '{missing}' not found.")
