"""MCP tools through the `openai` client: the loop runs calls on the server and feeds
the results back, lists a server's tools once per conversation or chain, and ends on
every bound."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from convostack.testing.mcp_server import McpTestServer
from convostack.testing.upstream import FAKE_MODEL as MODEL
from convostack.testing.upstream import Upstream


def mcp_tool(server: McpTestServer, **extra: Any) -> Any:
    return {"type": "mcp", "server_label": "tools", "server_url": server.url,
            "require_approval": "never", **extra}  # fmt: skip


def kinds(items: Any) -> list[str]:
    return [item.type for item in items]


def test_a_call_runs_on_the_server_and_its_result_reaches_the_model(
    client: openai.OpenAI, upstream: Upstream, mcp: McpTestServer
) -> None:
    conversation = client.conversations.create()
    response = client.responses.create(
        model=MODEL, input='call add {"a": 2, "b": 3}', tools=[mcp_tool(mcp)],
        conversation=conversation.id,
    )  # fmt: skip
    assert response.status == "completed"
    assert kinds(response.output) == ["mcp_list_tools", "mcp_call", "message"]
    listed, call, answer = response.output
    assert listed.type == "mcp_list_tools"
    assert listed.server_label == "tools"
    assert [t.name for t in listed.tools] == ["add", "echo", "slow", "fail", "headline", "headers"]
    assert call.type == "mcp_call"
    assert (call.name, call.arguments, call.output, call.error) == (
        "add",
        '{"a":2,"b":3}',
        "5",
        None,
    )
    assert call.id.startswith("mcp_")
    assert listed.id.startswith("mcpl_")
    # The model got the tools, then the call and its result, and answered after it.
    first, second = upstream.chat_requests()
    assert [t["function"]["name"] for t in first["tools"]] == listed_names(listed)
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "add"
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": call.id, "content": "5"}
    assert answer.type == "message"
    assert response.output_text.startswith("echo: ")
    # One transaction: the conversation holds the input and every output item, in order.
    stored = list(client.conversations.items.list(conversation.id, order="asc"))
    assert [i.id for i in stored[1:]] == [i.id for i in response.output]
    assert kinds(stored) == ["message", "mcp_list_tools", "mcp_call", "message"]
    assert len(mcp.calls("tools/call")) == 1


def listed_names(listed: Any) -> list[str]:
    return [t.name for t in listed.tools]


def test_tools_are_listed_once_per_conversation(client: openai.OpenAI, mcp: McpTestServer) -> None:
    conversation = client.conversations.create()
    for text in ('call add {"a": 1, "b": 1}', 'call echo {"text": "again"}'):
        client.responses.create(
            model=MODEL, input=text, tools=[mcp_tool(mcp)], conversation=conversation.id
        )
    assert len(mcp.calls("tools/list")) == 1
    # The session is kept between turns: at most one handshake for both (none when an
    # earlier test's session is still kept).
    assert len(mcp.calls("server/discover")) <= 1
    stored = kinds(client.conversations.items.list(conversation.id, order="asc"))
    assert stored.count("mcp_list_tools") == 1
    assert stored.count("mcp_call") == 2


def test_tools_are_listed_once_per_chain(client: openai.OpenAI, mcp: McpTestServer) -> None:
    first = client.responses.create(
        model=MODEL, input='call add {"a": 1, "b": 1}', tools=[mcp_tool(mcp)]
    )
    second = client.responses.create(
        model=MODEL, input='call add {"a": 2, "b": 2}', tools=[mcp_tool(mcp)],
        previous_response_id=first.id,
    )  # fmt: skip
    assert kinds(second.output) == ["mcp_call", "message"]
    assert second.output[0].type == "mcp_call"
    assert second.output[0].output == "4"
    assert len(mcp.calls("tools/list")) == 1


def test_several_rounds_in_one_turn(client: openai.OpenAI, upstream: Upstream) -> None:
    response = client.responses.create(
        model=MODEL, input='call add {"a": 1, "b": 2} x3', tools=[mcp_tool_url(client)]
    )
    assert kinds(response.output) == ["mcp_list_tools", *["mcp_call"] * 3, "message"]
    assert len(upstream.chat_requests()) == 4
    assert response.usage is not None
    assert response.usage.output_tokens > 0


def mcp_tool_url(client: openai.OpenAI) -> Any:
    return {"type": "mcp", "server_label": "configured"}  # the operator's, by label alone


def test_a_configured_server_is_used_by_label_with_its_own_headers(
    client: openai.OpenAI, mcp: McpTestServer
) -> None:
    response = client.responses.create(
        model=MODEL, input='call echo {"text": "hi"}', tools=[mcp_tool_url(client)]
    )
    assert [i.type for i in response.output][-2:] == ["mcp_call", "message"]
    sent = mcp.calls("tools/call")
    assert sent
    assert sent[0].headers["authorization"] == "Bearer configured-token-8472"
    assert "configured-token-8472" not in response.model_dump_json()


def test_the_loop_ends_at_max_tool_iterations(client: openai.OpenAI, upstream: Upstream) -> None:
    conversation = client.conversations.create()
    response = client.responses.create(
        model=MODEL, input='loop add {"a": 1, "b": 1}', tools=[mcp_tool_url(client)],
        conversation=conversation.id,
    )  # fmt: skip
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_tool_iterations"  # type: ignore[comparison-overlap]
    assert len(upstream.chat_requests()) == 4  # the configured max_tool_iterations
    assert kinds(response.output) == ["mcp_list_tools", *["mcp_call"] * 4]
    # An incomplete turn is a finished turn: kept whole.
    assert len(list(client.conversations.items.list(conversation.id))) == 6


def test_max_tool_calls_ignores_further_calls_and_asks_for_an_answer(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    response = client.responses.create(
        model=MODEL, input='loop add {"a": 1, "b": 1}', tools=[mcp_tool_url(client)],
        max_tool_calls=2,
    )  # fmt: skip
    assert response.status == "completed"
    assert kinds(response.output) == ["mcp_list_tools", "mcp_call", "mcp_call", "message"]
    assert upstream.chat_requests()[-1]["tool_choice"] == "none"


def test_the_breaker_stops_calling_a_failing_server(
    client: openai.OpenAI, upstream: Upstream, mcp: McpTestServer
) -> None:
    response = client.responses.create(
        model=MODEL, input='loop fail {"text": "x"}', tools=[mcp_tool(mcp)]
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "tool_failures"  # type: ignore[comparison-overlap]
    calls = [i for i in response.output if i.type == "mcp_call"]
    assert len(calls) == 3
    assert len(mcp.calls("tools/call")) == 3
    assert all(c.status == "failed" and c.error is not None for c in calls)
    error = calls[0].error
    assert error is not None
    assert error.type == "mcp_tool_execution_error"
    assert "fail was asked to fail" in str(error.content)
    assert len(upstream.chat_requests()) == 3


def test_a_failed_call_is_shown_to_the_model_which_answers(
    client: openai.OpenAI, upstream: Upstream, mcp: McpTestServer
) -> None:
    response = client.responses.create(
        model=MODEL, input='call fail {"text": "x"}', tools=[mcp_tool(mcp)]
    )
    assert response.status == "completed"
    call = response.output[1]
    assert call.type == "mcp_call"
    assert call.status == "failed"
    sent = upstream.last_messages()[-1]
    assert sent["role"] == "tool"
    assert sent["content"].startswith("Error: ")


def test_a_slow_call_times_out_as_a_failed_call(client: openai.OpenAI, mcp: McpTestServer) -> None:
    response = client.responses.create(
        model=MODEL, input='call slow {"seconds": 5}', tools=[mcp_tool(mcp)]
    )
    call = response.output[1]
    assert call.type == "mcp_call"
    assert call.status == "failed"
    assert call.error is not None
    assert call.error.type == "mcp_protocol_error"
    assert call.error.code == -32001
    assert "tool_call_timeout_seconds" in call.error.message


def test_arguments_that_are_not_an_object_fail_without_a_call(
    client: openai.OpenAI, mcp: McpTestServer
) -> None:
    response = client.responses.create(
        model=MODEL, input="call add {a: 1, b: 2}", tools=[mcp_tool(mcp)]
    )
    call = response.output[1]
    assert call.type == "mcp_call"
    assert call.status == "failed"
    assert mcp.calls("tools/call") == []


@pytest.mark.parametrize("allowed", [["add", "echo"], {"tool_names": ["add", "echo"]}])
def test_allowed_tools_limit_what_the_model_is_offered(
    client: openai.OpenAI, upstream: Upstream, mcp: McpTestServer, allowed: Any
) -> None:
    client.responses.create(
        model=MODEL, input="hello", tools=[mcp_tool(mcp, allowed_tools=allowed)]
    )
    offered = [t["function"]["name"] for t in upstream.chat_requests()[0]["tools"]]
    assert offered == ["add", "echo"]


def test_read_only_filter(client: openai.OpenAI, upstream: Upstream, mcp: McpTestServer) -> None:
    client.responses.create(
        model=MODEL, input="hello", tools=[mcp_tool(mcp, allowed_tools={"read_only": True})]
    )
    assert [t["function"]["name"] for t in upstream.chat_requests()[0]["tools"]] == ["headline"]


def test_named_mcp_tool_choice_is_forced_once(
    client: openai.OpenAI, upstream: Upstream, mcp: McpTestServer
) -> None:
    response = client.responses.create(
        model=MODEL, input="hello", tools=[mcp_tool(mcp)],
        tool_choice={"type": "mcp", "server_label": "tools", "name": "echo"},
    )  # fmt: skip
    first, second = upstream.chat_requests()
    assert first["tool_choice"] == {"type": "function", "function": {"name": "echo"}}
    assert second["tool_choice"] == "auto"
    assert kinds(response.output) == ["mcp_list_tools", "mcp_call", "message"]
    assert response.tool_choice.type == "mcp"  # type: ignore[union-attr]


def test_mcp_and_function_tools_together(
    client: openai.OpenAI, upstream: Upstream, mcp: McpTestServer
) -> None:
    function: Any = {"type": "function", "name": "lookup",
                "parameters": {"type": "object", "properties": {}}}  # fmt: skip
    response = client.responses.create(
        model=MODEL, input="call lookup", tools=[mcp_tool(mcp), function]
    )
    assert kinds(response.output) == ["mcp_list_tools", "function_call"]
    offered = [t["function"]["name"] for t in upstream.chat_requests()[0]["tools"]]
    assert offered[-1] == "lookup"
    assert "add" in offered


def test_the_sse_transport_is_used_when_streamable_http_is_not_there(
    client: openai.OpenAI, mcp: McpTestServer
) -> None:
    tool: Any = {**mcp_tool(mcp), "server_url": mcp.sse_url}
    response = client.responses.create(model=MODEL, input='call add {"a": 4, "b": 4}', tools=[tool])
    assert response.output[1].type == "mcp_call"
    assert response.output[1].output == "8"
    assert len(mcp.sse_recorder.requests) > 0


def test_reasoning_before_a_server_call_does_not_end_the_turn(
    client: openai.OpenAI, mcp: McpTestServer
) -> None:
    """A reasoning item is neither a call nor the caller's: the loop runs on."""
    response = client.responses.create(
        model=MODEL, input="think first", tools=[mcp_tool(mcp)],
        tool_choice={"type": "mcp", "server_label": "tools", "name": "echo"},
    )  # fmt: skip
    assert kinds(response.output) == ["mcp_list_tools", "reasoning", "mcp_call", "reasoning",
                                      "message"]  # fmt: skip
