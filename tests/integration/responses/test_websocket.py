"""WebSocket mode of /v1/responses, driven by the `openai` client's own
`responses.connect()` against a spawned server (the in-process transport cannot upgrade)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.resources.responses.responses import ResponsesConnection

from convostack.testing.stack import Target
from convostack.testing.upstream import FAKE_MODEL as MODEL
from convostack.testing.upstream import Upstream

TERMINAL = ("response.completed", "response.incomplete", "response.failed", "error")
SHELL: Any = {
    "type": "function", "name": "shell",
    "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
}  # fmt: skip


@pytest.fixture
def connection(stack_target: Target) -> Iterator[ResponsesConnection]:
    if stack_target.mode != "server":
        pytest.skip("the in-process transport cannot upgrade to a WebSocket")
    client = openai.OpenAI(base_url=stack_target.base_url, api_key="k", max_retries=0)
    with client.responses.connect() as connection:
        yield connection


def _events(connection: ResponsesConnection) -> list[Any]:
    events = []
    for event in connection:
        events.append(event)
        if event.type in TERMINAL:
            return events
    raise AssertionError("the connection closed")


def test_turns_on_one_connection_chain_without_storage(
    connection: ResponsesConnection, client: openai.OpenAI, upstream: Upstream
) -> None:
    connection.response.create(model=MODEL, input="one", store=False)
    first = _events(connection)
    assert [e.sequence_number for e in first] == list(range(len(first)))
    with client.responses.stream(model=MODEL, input="one") as http_stream:
        assert [e.type for e in first] == [e.type for e in http_stream]
    response_id = first[-1].response.id
    connection.response.create(model=MODEL, input="two", store=False,
                               previous_response_id=response_id)  # fmt: skip
    second = _events(connection)
    assert second[0].sequence_number == 0
    assert second[-1].type == "response.completed"
    assert second[-1].response.output_text == "echo: two [3 messages]"
    with pytest.raises(openai.BadRequestError):  # nothing was stored: HTTP cannot chain
        client.responses.create(model=MODEL, input="x", previous_response_id=response_id)


def test_a_client_side_tool_loop(connection: ResponsesConnection, upstream: Upstream) -> None:
    connection.response.create(model=MODEL, input="call shell x3", tools=[SHELL], store=False)
    previous = None
    for _round in range(3):
        events = _events(connection)
        response = events[-1].response
        (call,) = [item for item in response.output if item.type == "function_call"]
        previous = response.id
        connection.response.create(
            model=MODEL, tools=[SHELL], store=False, previous_response_id=previous,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "ok"}],
        )  # fmt: skip
    final = _events(connection)[-1].response
    assert final.output_text.startswith("echo")
    assert len(upstream.chat_requests()) == 4


def test_prewarm_calls_no_model(connection: ResponsesConnection, upstream: Upstream) -> None:
    connection.response.create(model=MODEL, input="remember me", generate=False, store=False)
    prewarm = _events(connection)
    assert prewarm[-1].type == "response.completed"
    assert prewarm[-1].response.output == []
    assert upstream.chat_requests() == []
    connection.response.create(model=MODEL, input="go", store=False,
                               previous_response_id=prewarm[-1].response.id)  # fmt: skip
    _events(connection)
    assert [m["content"] for m in upstream.last_messages()] == ["remember me", "go"]


def test_a_bad_event_is_an_error_event_and_the_connection_stays(
    connection: ResponsesConnection,
) -> None:
    connection.response.create(model=MODEL, input="x", temperature=9)
    (error,) = _events(connection)
    assert error.type == "error"
    assert error.error.param == "temperature"
    assert error.status == 400
    connection.send_raw("not json")
    assert _events(connection)[0].error.type == "invalid_request_error"
    connection.response.create(model=MODEL, input="x", previous_response_id="resp_nothing")
    assert _events(connection)[0].error.code == "previous_response_not_found"
    connection.response.create(model=MODEL, input="still here", stream_id="lane-1")
    events = _events(connection)
    assert events[-1].type == "response.completed"
    assert all(e.stream_id == "lane-1" for e in events)


def test_custom_tools_and_sealed_reasoning_over_websocket(
    connection: ResponsesConnection, upstream: Upstream
) -> None:
    tool: Any = {"type": "custom", "name": "apply_patch"}
    connection.response.create(model=MODEL, input="think it over", store=False,
                               include=["reasoning.encrypted_content"])  # fmt: skip
    first = _events(connection)[-1].response
    assert first.output[0].type == "reasoning"
    sealed: Any = first.output[0].model_dump(exclude_none=True)
    connection.response.create(
        model=MODEL, store=False, tools=[tool],
        input=[sealed, {"role": "user", "content": 'call apply_patch {"input": "p"}'}],
    )  # fmt: skip
    events = _events(connection)
    assert "response.custom_tool_call_input.done" in [e.type for e in events]
    assert events[-1].response.output[0].input == "p"


def test_leaving_mid_response_cancels_it_and_appends_nothing(
    stack_target: Target, client: openai.OpenAI
) -> None:
    if stack_target.mode != "server":
        pytest.skip("the in-process transport cannot upgrade to a WebSocket")
    conversation = client.conversations.create()
    ws_client = openai.OpenAI(base_url=stack_target.base_url, api_key="k", max_retries=0)
    with ws_client.responses.connect() as connection:
        connection.response.create(model=MODEL, input="drip:0.3", conversation=conversation.id)
        created: Any = next(iter(connection))  # response.created, then leave
    status = None
    for _ in range(50):  # kept once the server has seen the client go
        with contextlib.suppress(openai.NotFoundError):
            status = client.responses.retrieve(created.response.id).status
        if status is not None:
            break
        time.sleep(0.1)
    assert status == "cancelled"
    assert list(client.conversations.items.list(conversation.id)) == []
    with ws_client.responses.connect() as connection:  # the server serves on
        connection.response.create(model=MODEL, input="again")
        assert _events(connection)[-1].type == "response.completed"


def test_the_async_client_connects_too(stack_target: Target) -> None:
    if stack_target.mode != "server":
        pytest.skip("the in-process transport cannot upgrade to a WebSocket")

    async def run() -> list[str]:
        client = openai.AsyncOpenAI(base_url=stack_target.base_url, api_key="k", max_retries=0)
        kinds: list[str] = []
        async with client.responses.connect() as connection:
            await connection.response.create(model=MODEL, input="hello", store=False)
            async for event in connection:
                kinds.append(event.type)
                if event.type == "response.completed":
                    break
        return kinds

    kinds = asyncio.run(run())
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
