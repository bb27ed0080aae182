"""A tool turn that fails, or whose client leaves, part way through its loop appends
nothing: the conversation stays exactly as it was."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import openai
import pytest

from convostack.testing.mcp_server import McpTestServer
from convostack.testing.stack import Target
from convostack.testing.upstream import FAKE_MODEL as MODEL


def tool(server: McpTestServer) -> Any:
    return {"type": "mcp", "server_label": "tools", "server_url": server.url,
            "require_approval": "never"}  # fmt: skip


def test_a_model_failure_after_a_tool_call_appends_nothing(
    client: openai.OpenAI, mcp: McpTestServer
) -> None:
    conversation = client.conversations.create(items=[{"role": "user", "content": "before"}])
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(
            model=MODEL, input='call add {"a": 1, "b": 1} then fail500', tools=[tool(mcp)],
            conversation=conversation.id,
        )  # fmt: skip
    assert caught.value.status_code == 502
    assert len(mcp.calls("tools/call")) == 1  # the call ran; its turn did not land
    items = list(client.conversations.items.list(conversation.id))
    assert [i.type for i in items] == ["message"]


def test_a_streamed_failure_after_a_tool_call_appends_nothing(
    client: openai.OpenAI, mcp: McpTestServer
) -> None:
    conversation = client.conversations.create()
    with client.responses.stream(
        model=MODEL, input='call add {"a": 1, "b": 1} then fail500', tools=[tool(mcp)],
        conversation=conversation.id,
    ) as stream:  # fmt: skip
        kinds = [event.type for event in stream]
    assert "response.mcp_call.completed" in kinds
    assert kinds[-1] == "response.failed"
    assert list(client.conversations.items.list(conversation.id)) == []


def test_a_client_that_leaves_mid_loop_appends_nothing(
    client: openai.OpenAI, mcp: McpTestServer, stack_target: Target
) -> None:
    if stack_target.mode != "server":
        pytest.skip("the in-process transport reads whole responses; a client cannot leave")
    conversation = client.conversations.create()
    body = {"model": MODEL, "input": 'call slow {"seconds": 1} x2', "tools": [tool(mcp)],
            "conversation": conversation.id, "stream": True}  # fmt: skip
    with (
        httpx2.Client(base_url=stack_target.base_url, timeout=10) as http,
        http.stream("POST", "/responses", json=body) as response,
    ):
        for line in response.iter_lines():
            if "response.mcp_call.in_progress" in line:
                break  # leave while the first call runs
    time.sleep(3)  # long enough for both calls and the answer, had the turn gone on
    assert list(client.conversations.items.list(conversation.id)) == []


def test_a_call_of_a_tool_no_one_offered_fails_and_the_model_is_told(
    client: openai.OpenAI, mcp: McpTestServer
) -> None:
    # "?ghost": the fake model calls a tool that is not in the request's tools.
    only_add: Any = {**tool(mcp), "allowed_tools": ["add"]}
    response = client.responses.create(model=MODEL, input="call ?ghost {}", tools=[only_add])
    call = response.output[1]
    assert call.type == "mcp_call"
    assert call.name == "ghost"
    assert call.status == "failed"
    assert call.error is not None
    assert "not available" in str(call.error.message)  # type: ignore[union-attr]
    assert mcp.calls("tools/call") == []
    assert response.output[-1].type == "message"
