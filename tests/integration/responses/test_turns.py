"""A turn on a conversation: the whole history goes to the model, the turn is appended."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from convostack.testing.upstream import FAKE_MODEL as MODEL
from convostack.testing.upstream import Upstream


def _texts(client: openai.OpenAI, conversation_id: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for item in client.conversations.items.list(conversation_id, order="asc", limit=100):
        assert item.type == "message"
        out.append((item.role, getattr(item.content[0], "text", "")))
    return out


def test_turn_reads_history_and_appends_input_and_output(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    conversation = client.conversations.create(items=[{"role": "user", "content": "first"}])
    response = client.responses.create(
        model=MODEL, input=[{"role": "user", "content": "second"}], conversation=conversation.id
    )
    assert response.status == "completed"
    assert response.conversation is not None
    assert response.conversation.id == conversation.id
    assert response.output_text == "echo: second [2 messages]"
    assert upstream.last_messages() == [
        {"role": "user", "content": "first"},
        {"role": "user", "content": "second"},
    ]
    assert _texts(client, conversation.id) == [
        ("user", "first"),
        ("user", "second"),
        ("assistant", "echo: second [2 messages]"),
    ]
    # The appended output item is the response's output item, same id.
    items = client.conversations.items.list(conversation.id, order="asc").data
    assert items[-1].id == response.output[0].id
    assert response.usage is not None
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


def test_conversation_as_object_form(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()
    response = client.responses.create(
        model=MODEL, input="hi", conversation={"id": conversation.id}
    )
    assert response.conversation is not None
    assert response.conversation.id == conversation.id


def test_items_added_and_deleted_through_the_items_api_change_the_next_turn(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    conversation = client.conversations.create()
    client.responses.create(model=MODEL, input="one", conversation=conversation.id)
    added = client.conversations.items.create(
        conversation.id, items=[{"role": "user", "content": "inserted by hand"}]
    )
    first_item = client.conversations.items.list(conversation.id, order="asc").data[0]
    assert first_item.id is not None
    client.conversations.items.delete(first_item.id, conversation_id=conversation.id)
    client.responses.create(model=MODEL, input="two", conversation=conversation.id)
    sent = [m["content"] for m in upstream.last_messages()]
    assert sent == ["echo: one [1 messages]", "inserted by hand", "two"]
    assert added.data[0].id is not None


def test_a_60_item_conversation_sends_all_60_items(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    conversation = client.conversations.create()
    for start in range(0, 60, 20):
        items: list[Any] = [{"role": "user", "content": f"m{n}"} for n in range(start, start + 20)]
        client.conversations.items.create(conversation.id, items=items)
    response = client.responses.create(model=MODEL, input="last", conversation=conversation.id)
    sent = upstream.last_messages()
    assert len(sent) == 61
    assert [m["content"] for m in sent[:60]] == [f"m{n}" for n in range(60)]
    assert response.output_text == "echo: last [61 messages]"


def test_instructions_are_for_this_turn_only(client: openai.OpenAI, upstream: Upstream) -> None:
    conversation = client.conversations.create()
    client.responses.create(
        model=MODEL, input="a", instructions="Be terse.", conversation=conversation.id
    )
    assert upstream.last_messages() == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "a"},
    ]
    client.responses.create(model=MODEL, input="b", conversation=conversation.id)
    roles = [m["role"] for m in upstream.last_messages()]
    assert "system" not in roles
    assert [role for role, _ in _texts(client, conversation.id)] == [
        "user", "assistant", "user", "assistant",
    ]  # fmt: skip


def test_failing_upstream_changes_nothing(client: openai.OpenAI, upstream: Upstream) -> None:
    conversation = client.conversations.create(items=[{"role": "user", "content": "before"}])
    before = _texts(client, conversation.id)
    with pytest.raises(openai.InternalServerError) as caught:
        client.responses.create(model=MODEL, input="fail500", conversation=conversation.id)
    assert "fake" in caught.value.message
    assert _texts(client, conversation.id) == before
    with pytest.raises(openai.InternalServerError):
        client.responses.create(model="dead-model", input="hi", conversation=conversation.id)
    assert _texts(client, conversation.id) == before


def test_failing_stream_changes_nothing_and_reports_response_failed(
    client: openai.OpenAI,
) -> None:
    conversation = client.conversations.create(items=[{"role": "user", "content": "before"}])
    events = list(
        client.responses.create(
            model=MODEL, input="break", conversation=conversation.id, stream=True
        )
    )
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.failed"
    failed = events[-1]
    assert failed.type == "response.failed"
    assert failed.response.status == "failed"
    assert failed.response.error is not None
    assert failed.response.error.code == "server_error"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert _texts(client, conversation.id) == [("user", "before")]
    stored = client.responses.retrieve(failed.response.id)
    assert stored.status == "failed"


def test_store_false_appends_the_turn_but_keeps_no_response(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()
    response = client.responses.create(
        model=MODEL, input="x", conversation=conversation.id, store=False
    )
    assert len(_texts(client, conversation.id)) == 2
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_concurrent_turns_on_one_conversation_are_adjacent_blocks(client: openai.OpenAI) -> None:
    import concurrent.futures

    conversation = client.conversations.create()

    def turn(n: int) -> str:
        response = client.responses.create(model=MODEL, input=f"t{n}", conversation=conversation.id)
        return response.id

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(turn, range(8)))
    texts = _texts(client, conversation.id)
    assert len(texts) == 16
    for index in range(0, 16, 2):
        role, text = texts[index]
        assert role == "user"
        assert texts[index + 1][0] == "assistant"
        assert texts[index + 1][1].startswith(f"echo: {text} [")
