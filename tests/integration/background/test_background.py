"""Background responses through the `openai` client: queued at once, polled to their
end, cancelled while queued or running (again: the same answer; once finished: an
error), and a failed or cancelled one leaves its conversation as it was."""

from __future__ import annotations

import time

import openai
import pytest
from openai.types.responses import Response, ToolParam

from convostack.testing.upstream import FAKE_MODEL as MODEL


def _poll(client: openai.OpenAI, response_id: str, until: tuple[str, ...]) -> Response:
    deadline = time.monotonic() + 20
    while True:
        response = client.responses.retrieve(response_id)
        if response.status in until:
            return response
        assert time.monotonic() < deadline, f"still {response.status}"
        time.sleep(0.05)


def test_a_background_turn_is_queued_then_completes_into_its_conversation(
    client: openai.OpenAI,
) -> None:
    conversation = client.conversations.create()
    started = time.monotonic()
    queued = client.responses.create(
        model=MODEL, input="slow:2", conversation=conversation.id, background=True
    )
    assert time.monotonic() - started < 1.8  # returned before the model answered
    assert queued.status == "queued"
    assert queued.background is True
    assert queued.output == []
    done = _poll(client, queued.id, ("completed",))
    assert done.id == queued.id
    assert done.created_at == queued.created_at
    assert done.background is True
    assert done.output_text.startswith("echo: slow:2")
    items = list(client.conversations.items.list(conversation.id, order="asc"))
    assert [i.type for i in items] == ["message", "message"]
    inputs = list(client.responses.input_items.list(queued.id))
    assert [i.id for i in inputs] == [items[0].id]  # the same item, not a copy


def test_cancel_while_queued_and_while_running_leaves_the_conversation_unchanged(
    client: openai.OpenAI,
) -> None:
    conversation = client.conversations.create()
    # Two slots: two slow turns run, the third waits in the queue.
    running = [
        client.responses.create(model=MODEL, input="slow:5", background=True) for _ in range(2)
    ]
    waiting = client.responses.create(
        model=MODEL, input="hello", conversation=conversation.id, background=True
    )
    for r in running:
        _poll(client, r.id, ("in_progress",))
    assert client.responses.retrieve(waiting.id).status == "queued"
    cancelled = client.responses.cancel(waiting.id)
    assert cancelled.status == "cancelled"
    assert client.responses.cancel(waiting.id).status == "cancelled"  # idempotent
    started = time.monotonic()
    for r in running:
        assert client.responses.cancel(r.id).status == "cancelled"
    assert time.monotonic() - started < 2
    time.sleep(0.5)  # the freed slots never take the cancelled one
    for r in (*running, waiting):
        assert client.responses.retrieve(r.id).status == "cancelled"
    assert list(client.conversations.items.list(conversation.id)) == []


def test_cancel_of_a_running_turn_stops_it_and_appends_nothing(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()
    queued = client.responses.create(
        model=MODEL, input="slow:3", conversation=conversation.id, background=True
    )
    _poll(client, queued.id, ("in_progress",))
    assert client.responses.cancel(queued.id).status == "cancelled"
    time.sleep(3.5)  # past the model's answer: it was not kept
    assert client.responses.retrieve(queued.id).status == "cancelled"
    assert list(client.conversations.items.list(conversation.id)) == []


def test_a_finished_or_foreground_response_cannot_be_cancelled(client: openai.OpenAI) -> None:
    queued = client.responses.create(model=MODEL, input="hi", background=True)
    _poll(client, queued.id, ("completed",))
    with pytest.raises(openai.BadRequestError) as finished:
        client.responses.cancel(queued.id)
    assert "Cannot cancel a completed response" in finished.value.message
    foreground = client.responses.create(model=MODEL, input="hi")
    with pytest.raises(openai.BadRequestError) as not_background:
        client.responses.cancel(foreground.id)
    assert "background=true" in not_background.value.message
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel("resp_missing")


def test_a_failed_background_turn_leaves_the_conversation_unchanged(
    client: openai.OpenAI,
) -> None:
    conversation = client.conversations.create()
    queued = client.responses.create(
        model=MODEL, input="fail500", conversation=conversation.id, background=True
    )
    failed = _poll(client, queued.id, ("failed",))
    assert failed.error is not None
    assert list(client.conversations.items.list(conversation.id)) == []


def test_background_without_store_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=MODEL, input="hi", background=True, store=False)
    assert refused.value.body["param"] == "store"  # type: ignore[index]


def test_a_bad_background_request_is_refused_before_it_is_queued(
    client: openai.OpenAI,
) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.create(
            model=MODEL, input="hi", conversation="conv_missing", background=True
        )


def test_a_background_turn_continues_a_chain_with_a_tool_output(client: openai.OpenAI) -> None:
    tools: list[ToolParam] = [{"type": "function", "name": "lookup", "strict": False,
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}]  # fmt: skip
    first = client.responses.create(model=MODEL, input="call lookup", tools=tools)
    call = first.output[0]
    assert call.type == "function_call"
    queued = client.responses.create(
        model=MODEL, previous_response_id=first.id, tools=tools, background=True,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "42"}],
    )  # fmt: skip
    done = _poll(client, queued.id, ("completed",))
    assert done.previous_response_id == first.id
    assert done.output_text.startswith("echo:")
    inputs = list(client.responses.input_items.list(queued.id))
    assert [i.type for i in inputs] == ["function_call_output"]
