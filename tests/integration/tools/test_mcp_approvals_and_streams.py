"""MCP approvals across turns (by conversation and by chain), the streamed event
sequence of a tool turn, and what a bad definition or an unreachable server gives."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import orjson
import pytest
from openai.types.conversations import ConversationItem
from openai.types.responses import Response, ResponseStreamEvent

from convostack.testing.mcp_server import McpTestServer
from convostack.testing.upstream import FAKE_MODEL as MODEL
from convostack.testing.upstream import Upstream
from convostack.testing.wire import assert_exact

SECRET_HEADER = "header-secret-5531"
SECRET_TOKEN = "oauth-secret-9920"


def guarded(server: McpTestServer, **extra: Any) -> Any:
    """A server whose calls need approval (as when require_approval is absent)."""
    return {"type": "mcp", "server_label": "tools", "server_url": server.url,
            "headers": {"X-Api-Key": SECRET_HEADER}, "authorization": SECRET_TOKEN,
            **extra}  # fmt: skip


def answer(request_id: str, approve: bool) -> Any:
    return [{"type": "mcp_approval_response", "approval_request_id": request_id,
             "approve": approve, "reason": "not now"}]  # fmt: skip


@pytest.mark.parametrize("by", ["conversation", "chain"])
def test_an_approved_call_runs_in_the_next_turn(
    client: openai.OpenAI, upstream: Upstream, mcp: McpTestServer, by: str
) -> None:
    conversation = client.conversations.create() if by == "conversation" else None
    place: Any = {"conversation": conversation.id} if conversation else {}
    first = client.responses.create(
        model=MODEL, input='call add {"a": 20, "b": 22}', tools=[guarded(mcp)], **place
    )
    assert [i.type for i in first.output] == ["mcp_list_tools", "mcp_approval_request"]
    request = first.output[1]
    assert request.type == "mcp_approval_request"
    assert request.id.startswith("mcpr_")
    assert (request.name, request.arguments, request.server_label) == (
        "add",
        '{"a":20,"b":22}',
        "tools",
    )
    assert mcp.calls("tools/call") == []  # nothing runs before the caller says so
    assert len(upstream.chat_requests()) == 1

    place = place or {"previous_response_id": first.id}
    second = client.responses.create(
        model=MODEL, input=answer(request.id, True), tools=[guarded(mcp)], **place
    )
    assert [i.type for i in second.output] == ["mcp_call", "message"]
    call = second.output[0]
    assert call.type == "mcp_call"
    assert (call.output, call.approval_request_id, call.status) == ("42", request.id, "completed")
    assert len(mcp.calls("tools/call")) == 1
    assert mcp.calls("tools/list") == mcp.calls("tools/list")[:1]
    # The model saw the call and its result, and answered after it.
    assert upstream.last_messages()[-1] == {
        "role": "tool",
        "tool_call_id": call.id,
        "content": "42",
    }
    if conversation is not None:
        kinds = [i.type for i in client.conversations.items.list(conversation.id, order="asc")]
        assert kinds == ["message", "mcp_list_tools", "mcp_approval_request",
                         "mcp_approval_response", "mcp_call", "message"]  # fmt: skip
        # The same request cannot be answered twice.
        with pytest.raises(openai.BadRequestError) as twice:
            client.responses.create(
                model=MODEL, input=answer(request.id, True), tools=[guarded(mcp)], **place
            )
        assert twice.value.body["param"] == "input[0].approval_request_id"  # type: ignore[index]


def test_a_denied_call_is_not_run_and_the_model_is_told(
    client: openai.OpenAI, upstream: Upstream, mcp: McpTestServer
) -> None:
    conversation = client.conversations.create()
    first = client.responses.create(
        model=MODEL, input='call add {"a": 1, "b": 1}', tools=[guarded(mcp)],
        conversation=conversation.id,
    )  # fmt: skip
    request_id = str(_item_id_of(first.output[-1]))
    second = client.responses.create(
        model=MODEL, input=answer(request_id, False), tools=[guarded(mcp)],
        conversation=conversation.id,
    )  # fmt: skip
    assert [i.type for i in second.output] == ["message"]
    assert mcp.calls("tools/call") == []
    told = upstream.last_messages()[-1]
    assert told == {"role": "tool", "tool_call_id": request_id,
                    "content": "The user denied this tool call: not now"}  # fmt: skip


def test_an_unknown_approval_request_is_a_400(client: openai.OpenAI, mcp: McpTestServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input=answer("mcpr_nope", True), tools=[guarded(mcp)])
    assert caught.value.body["param"] == "input[0].approval_request_id"  # type: ignore[index]


def test_never_for_some_tools_only(client: openai.OpenAI, mcp: McpTestServer) -> None:
    tool = guarded(mcp, require_approval={"never": {"tool_names": ["echo"]}})
    free = client.responses.create(model=MODEL, input='call echo {"text": "x"}', tools=[tool])
    held = client.responses.create(model=MODEL, input='call add {"a": 1, "b": 1}', tools=[tool])
    assert [i.type for i in free.output][-2:] == ["mcp_call", "message"]
    assert [i.type for i in held.output][-1] == "mcp_approval_request"


def test_secrets_reach_the_mcp_server_and_nothing_else(
    client: openai.OpenAI, mcp: McpTestServer, http: httpx2.Client
) -> None:
    conversation = client.conversations.create()
    response = client.responses.create(
        model=MODEL, input='call echo {"text": "hi"}', conversation=conversation.id,
        tools=[guarded(mcp, require_approval="never")],
    )  # fmt: skip
    received = mcp.calls("tools/call")[0].headers
    assert received["x-api-key"] == SECRET_HEADER
    assert received["authorization"] == f"Bearer {SECRET_TOKEN}"
    echoed = response.tools[0]
    assert echoed.type == "mcp"
    assert echoed.headers == {"X-Api-Key": "[redacted]"}
    assert echoed.authorization == "[redacted]"
    seen = [
        http.get(f"/v1/responses/{response.id}").text,
        http.get(f"/v1/conversations/{conversation.id}/items").text,
        http.get(f"/v1/responses/{response.id}?stream=true").text,
    ]
    for text in seen:
        assert SECRET_HEADER not in text
        assert SECRET_TOKEN not in text


def test_an_unreachable_server_is_a_424_before_anything_runs(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    conversation = client.conversations.create()
    tool: Any = {"type": "mcp", "server_label": "gone", "server_url": "http://127.0.0.1:9/mcp",
                 "headers": {"X-Api-Key": SECRET_HEADER}}  # fmt: skip
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(
            model=MODEL, input="hello", tools=[tool], conversation=conversation.id, stream=True
        )
    assert caught.value.status_code == 424
    body: Any = caught.value.body
    assert body["type"] == "external_connector_error"
    assert "'gone'" in body["message"]
    assert SECRET_HEADER not in str(body)
    assert upstream.chat_requests() == []
    assert list(client.conversations.items.list(conversation.id)) == []


@pytest.mark.parametrize("path", ["/nothing/here", "/chat/completions"])
def test_a_url_that_is_not_an_mcp_server_is_a_424(
    client: openai.OpenAI, upstream: Upstream, path: str
) -> None:
    # The fake upstream speaks HTTP, not MCP: a 404, or JSON that is no JSON-RPC answer.
    tool: Any = {"type": "mcp", "server_label": "nope", "server_url": upstream.url + path}
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(model=MODEL, input="hello", tools=[tool])
    assert caught.value.status_code == 424
    body: Any = caught.value.body
    assert "'nope'" in body["message"]


@pytest.mark.parametrize(
    ("tool", "param"),
    [
        ({"type": "mcp", "server_label": "x"}, "tools[0].server_url"),
        ({"type": "mcp", "server_label": "x", "server_url": "http://169.254.169.254/mcp"},
         "tools[0].server_url"),
        ({"type": "mcp", "server_label": "x", "server_url": "http://u:p@127.0.0.1:9/mcp"},
         "tools[0].server_url"),
        ({"type": "mcp", "server_label": "x", "server_url": "file:///etc/passwd"},
         "tools[0].server_url"),
        ({"type": "mcp", "server_label": "x", "connector_id": "connector_gmail"},
         "tools[0].connector_id"),
        ({"type": "mcp", "server_label": "configured", "server_url": "http://127.0.0.1:9/"},
         "tools[0].server_url"),
        ({"type": "mcp", "server_label": "bad label!", "server_url": "http://127.0.0.1:9/"},
         "tools[0].server_label"),
        ({"type": "mcp", "server_label": "x", "server_url": "http://127.0.0.1:9/",
          "require_approval": "sometimes"}, "tools[0].require_approval"),
        ({"type": "web_search"}, "tools[0].type"),
    ],
)  # fmt: skip
def test_bad_definitions_are_400s_naming_the_field(
    client: openai.OpenAI, tool: Any, param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input="hello", tools=[tool])
    assert caught.value.body["param"] == param  # type: ignore[index]


def test_a_tool_choice_naming_an_unknown_tool_is_a_400(
    client: openai.OpenAI, mcp: McpTestServer
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model=MODEL, input="hello", tools=[guarded(mcp)],
            tool_choice={"type": "mcp", "server_label": "tools", "name": "nope"},
        )  # fmt: skip
    assert caught.value.body["param"] == "tool_choice"  # type: ignore[index]


def test_the_stream_sends_every_tool_event_in_order(
    client: openai.OpenAI, mcp: McpTestServer
) -> None:
    tool = guarded(mcp, require_approval="never")
    with client.responses.stream(
        model=MODEL, input='call add {"a": 1, "b": 2}', tools=[tool]
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    listed, call, message = (_item_id_of(i) for i in final.output)
    assert kinds[:2] == ["response.created", "response.in_progress"]
    about = [(e.type, _item_id(e)) for e in events[2:] if _item_id(e) != message]
    # Several argument deltas count as one here.
    about = [pair for n, pair in enumerate(about) if n == 0 or about[n - 1] != pair]
    assert [kind for kind, _ in about[:10]] == [
        "response.output_item.added", "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed", "response.output_item.done",
        "response.output_item.added", "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta", "response.mcp_call_arguments.done",
        "response.mcp_call.completed", "response.output_item.done",
    ]  # fmt: skip
    assert [item for _, item in about[:10]] == [listed] * 4 + [call] * 6
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output[1].type == "mcp_call"
    assert final.output[1].output == "3"
    assert str(message).startswith("msg_")
    # The stored response replays the same tool events (its deltas whole).
    replayed = [e.type for e in client.responses.retrieve(final.id, stream=True)]
    assert replayed[:12] == ["response.created", "response.in_progress",
                             *[kind for kind, _ in about[:10]]]  # fmt: skip


def _item_id_of(item: Any) -> str | None:
    found: str | None = item.id
    return found


def _item_id(event: Any) -> str | None:
    item = getattr(event, "item", None)
    found: str | None = getattr(event, "item_id", None) or (item.id if item else None)
    return found


def test_a_server_that_echoes_secrets_does_not_put_them_in_items(
    client: openai.OpenAI, mcp: McpTestServer
) -> None:
    response = client.responses.create(
        model=MODEL, input="call headers {}", tools=[guarded(mcp, require_approval="never")]
    )
    call = response.output[1]
    assert call.type == "mcp_call"
    assert call.status == "completed"
    assert "x-api-key" in str(call.output)  # the header was there, its value is not
    assert SECRET_HEADER not in response.model_dump_json()
    assert SECRET_TOKEN not in response.model_dump_json()


def test_no_secret_reaches_the_log(
    client: openai.OpenAI,
    mcp: McpTestServer,
    caplog: pytest.LogCaptureFixture,
    stack_config_is_local: None,
) -> None:
    caplog.set_level("DEBUG")
    client.responses.create(
        model=MODEL,
        input='call add {"a": 1, "b": 1}',
        tools=[guarded(mcp, require_approval="never")],
    )
    gone: Any = {**guarded(mcp), "server_url": "http://127.0.0.1:9/mcp"}
    with pytest.raises(openai.APIStatusError):
        client.responses.create(model=MODEL, input="hello", tools=[gone])
    assert caplog.records
    assert SECRET_HEADER not in caplog.text
    assert SECRET_TOKEN not in caplog.text


def test_tool_responses_items_and_events_match_the_types(
    http: httpx2.Client, mcp: McpTestServer
) -> None:
    conversation = http.post("/v1/conversations", json={}).json()["id"]
    tools = [guarded(mcp, require_approval={"never": {"tool_names": ["echo", "fail"]}})]
    for text in ('call echo {"text": "x"}', 'call fail {"text": "x"}', 'call add {"a": 1, "b": 1}'):
        body = {"model": MODEL, "input": text, "tools": tools, "conversation": conversation,
                "stream": True}  # fmt: skip
        with http.stream("POST", "/v1/responses", json=body) as answer:
            events = [orjson.loads(line[6:]) for line in answer.iter_lines()
                      if line.startswith("data: ")]  # fmt: skip
        for event in events:
            assert_exact(ResponseStreamEvent, event)
        assert_exact(Response, events[-1]["response"])
    items = http.get(f"/v1/conversations/{conversation}/items?limit=100").json()["data"]
    assert {i["type"] for i in items} >= {"mcp_list_tools", "mcp_call", "mcp_approval_request"}
    for item in items:
        assert_exact(ConversationItem, item)
