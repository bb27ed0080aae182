"""Every short form is normalised on store; every item type round-trips unchanged otherwise."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest

# (input item, what items.list must return for it, ignoring the server-chosen id)
SHORT_FORMS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (
        {"role": "user", "content": "hi"},
        {"type": "message", "status": "completed", "role": "user",
         "content": [{"type": "input_text", "text": "hi"}]},
    ),
    (
        {"role": "system", "content": "be brief"},
        {"type": "message", "status": "completed", "role": "system",
         "content": [{"type": "input_text", "text": "be brief"}]},
    ),
    (
        {"role": "developer", "content": "use metric units"},
        {"type": "message", "status": "completed", "role": "developer",
         "content": [{"type": "input_text", "text": "use metric units"}]},
    ),
    (
        {"role": "assistant", "content": "hello there"},
        {"type": "message", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": "hello there", "annotations": [],
                      "logprobs": []}]},
    ),
    (
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]},
        {"type": "message", "status": "completed", "role": "user",
         "content": [{"type": "input_text", "text": "x"}]},
    ),
    (
        {"role": "user", "content": [{"type": "input_image", "image_url": "https://e.x/a.png"}]},
        {"type": "message", "status": "completed", "role": "user",
         "content": [{"type": "input_image", "image_url": "https://e.x/a.png", "detail": "auto"}]},
    ),
    (
        {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}],
         "phase": "final_answer"},
        {"type": "message", "status": "completed", "role": "assistant", "phase": "final_answer",
         "content": [{"type": "output_text", "text": "ok", "annotations": []}]},
    ),
    (
        {"type": "function_call_output", "call_id": "call_1", "output": "42"},
        {"type": "function_call_output", "status": "completed", "call_id": "call_1",
         "output": "42"},
    ),
]  # fmt: skip

# Full items of every other type: stored exactly as sent, plus id and status.
FULL_ITEMS: list[dict[str, Any]] = [
    {"type": "message", "id": "msg_client1", "role": "assistant", "status": "completed",
     "content": [{"type": "output_text", "text": "t", "annotations": [
         {"type": "url_citation", "url": "https://e.x", "title": "E", "start_index": 0,
          "end_index": 1}]}, {"type": "refusal", "refusal": "no"}]},
    {"type": "message", "role": "user", "content": [
        {"type": "input_file", "file_id": "file_1", "filename": "a.pdf"},
        {"type": "input_image", "file_id": "file_2", "detail": "high"}]},
    {"type": "function_call", "call_id": "call_9", "name": "get_weather",
     "arguments": "{\"city\": \"Paris\"}"},
    {"type": "function_call_output", "call_id": "call_9",
     "output": [{"type": "input_text", "text": "sunny"}]},
    {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thinking"}],
     "encrypted_content": "abc"},
    {"type": "file_search_call", "queries": ["q"], "status": "completed",
     "results": [{"file_id": "f", "filename": "n", "score": 0.5, "text": "t"}]},
    {"type": "web_search_call", "status": "completed",
     "action": {"type": "search", "query": "weather"}},
    {"type": "image_generation_call", "status": "completed", "result": None},
    {"type": "computer_call", "call_id": "call_c", "pending_safety_checks": [],
     "status": "completed", "action": {"type": "click", "button": "left", "x": 1, "y": 2}},
    {"type": "computer_call_output", "call_id": "call_c",
     "output": {"type": "computer_screenshot", "image_url": "data:image/png;base64,AA=="}},
    {"type": "code_interpreter_call", "container_id": "cntr_1", "code": "print(1)",
     "outputs": [{"type": "logs", "logs": "1"}], "status": "completed"},
    {"type": "local_shell_call", "call_id": "call_l", "status": "completed",
     "action": {"type": "exec", "command": ["ls"], "env": {}}},
    {"type": "local_shell_call_output", "output": "{\"stdout\": \"\"}"},
    {"type": "shell_call", "call_id": "call_s", "action": {"commands": ["ls"]}},
    {"type": "shell_call_output", "call_id": "call_s",
     "output": [{"stdout": "a", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}]},
    {"type": "apply_patch_call", "call_id": "call_p", "status": "completed",
     "operation": {"type": "delete_file", "path": "a.txt"}},
    {"type": "apply_patch_call_output", "call_id": "call_p", "status": "completed"},
    {"type": "mcp_list_tools", "server_label": "srv",
     "tools": [{"name": "t", "input_schema": {"type": "object"}}]},
    {"type": "mcp_approval_request", "server_label": "srv", "name": "t", "arguments": "{}"},
    {"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": True},
    {"type": "mcp_call", "server_label": "srv", "name": "t", "arguments": "{}", "output": "o"},
    {"type": "custom_tool_call", "call_id": "call_x", "name": "grep", "input": "foo"},
    {"type": "custom_tool_call_output", "call_id": "call_x", "output": "bar"},
    {"type": "compaction", "encrypted_content": "zzz"},
]  # fmt: skip

STATUSLESS = {
    "mcp_list_tools", "mcp_approval_request", "mcp_approval_response", "custom_tool_call",
    "custom_tool_call_output", "compaction",
}  # fmt: skip


def _stored(http: httpx2.Client, conversation_id: str) -> list[dict[str, Any]]:
    # Read the raw JSON, so that no client-side parsing hides a difference.
    response = http.get(
        f"/v1/conversations/{conversation_id}/items", params={"order": "asc", "limit": 100}
    )
    assert response.status_code == 200
    data: list[dict[str, Any]] = response.json()["data"]
    return data


@pytest.mark.parametrize(("given", "expected"), SHORT_FORMS)
def test_short_forms_are_normalised(
    client: openai.OpenAI, http: httpx2.Client, given: dict[str, Any], expected: dict[str, Any]
) -> None:
    conversation = client.conversations.create(items=[given])  # type: ignore[list-item]
    [stored] = _stored(http, conversation.id)
    item_id = stored.pop("id")
    assert stored == expected
    prefix = "msg_" if expected["type"] == "message" else "fco_"
    assert item_id.startswith(prefix)


def test_every_item_type_round_trips(client: openai.OpenAI, http: httpx2.Client) -> None:
    conversation = client.conversations.create()
    for start in range(0, len(FULL_ITEMS), 20):
        client.conversations.items.create(
            conversation.id,
            items=FULL_ITEMS[start : start + 20],  # type: ignore[arg-type]
        )
    stored = _stored(http, conversation.id)
    assert len(stored) == len(FULL_ITEMS)
    for sent, got in zip(FULL_ITEMS, stored, strict=True):
        got = dict(got)
        got_id = got.pop("id")
        # A caller's id is kept; otherwise the server chose one.
        assert got_id == sent.get("id", got_id)
        expected = {k: v for k, v in sent.items() if k != "id"}
        if sent["type"] not in STATUSLESS:
            expected.setdefault("status", "completed")
        assert got == expected, sent["type"]
    # The client parses every one of them into its own typed union.
    parsed = list(client.conversations.items.list(conversation.id, order="asc"))
    assert [item.type for item in parsed] == [item["type"] for item in FULL_ITEMS]


def test_ids_carry_the_prefix_of_their_type(client: openai.OpenAI, http: httpx2.Client) -> None:
    items: list[Any] = [
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            {"type": "reasoning", "summary": []},
            {"type": "web_search_call", "status": "completed",
             "action": {"type": "search", "query": "q"}},
        ]  # fmt: skip
    conversation = client.conversations.create(items=items)
    prefixes = [item["id"].split("_")[0] for item in _stored(http, conversation.id)]
    assert prefixes == ["fc", "rs", "ws"]


def test_item_reference_stores_a_copy(client: openai.OpenAI) -> None:
    source = client.conversations.create(items=[{"role": "user", "content": "remember me"}])
    [original] = client.conversations.items.list(source.id).data
    assert original.id is not None
    target = client.conversations.create()
    created = client.conversations.items.create(
        target.id, items=[{"type": "item_reference", "id": original.id}]
    )
    [copy] = created.data
    assert copy.type == "message"
    assert copy.id != original.id
    assert copy.model_dump(exclude={"id"}) == original.model_dump(exclude={"id"})


def test_caller_ids_are_kept_and_unique_per_conversation(client: openai.OpenAI) -> None:
    item = {"type": "message", "id": "msg_mine", "role": "user", "status": "completed",
            "content": [{"type": "input_text", "text": "a"}]}  # fmt: skip
    conversation = client.conversations.create(items=[item])  # type: ignore[list-item]
    retrieved = client.conversations.items.retrieve("msg_mine", conversation_id=conversation.id)
    assert retrieved.id == "msg_mine"
    with pytest.raises(openai.BadRequestError) as caught:
        client.conversations.items.create(conversation.id, items=[item])  # type: ignore[list-item]
    assert caught.value.param == "items[0].id"
    # Another conversation may hold an item with the same id (e.g. a copied output).
    other = client.conversations.create(items=[item])  # type: ignore[list-item]
    assert (
        client.conversations.items.retrieve("msg_mine", conversation_id=other.id).id == "msg_mine"
    )
