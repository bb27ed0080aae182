"""Conversations: create, retrieve, update, delete, through the stock openai client."""

from __future__ import annotations

import openai
import pytest


def test_create_with_metadata_and_items(client: openai.OpenAI) -> None:
    conversation = client.conversations.create(
        metadata={"topic": "demo"},
        items=[{"type": "message", "role": "user", "content": "Hello!"}],
    )
    assert conversation.id.startswith("conv_")
    assert conversation.object == "conversation"
    assert conversation.metadata == {"topic": "demo"}
    assert isinstance(conversation.created_at, int)

    items = client.conversations.items.list(conversation.id)
    assert [item.type for item in items.data] == ["message"]
    message = items.data[0]
    assert message.type == "message"
    assert message.id.startswith("msg_")
    assert message.status == "completed"
    assert message.role == "user"
    assert [part.model_dump(exclude_none=True) for part in message.content] == [
        {"type": "input_text", "text": "Hello!"}
    ]


def test_create_empty(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()
    assert conversation.metadata == {}
    page = client.conversations.items.list(conversation.id)
    assert page.data == []
    assert page.has_more is False


def test_retrieve_returns_what_create_returned(client: openai.OpenAI) -> None:
    created = client.conversations.create(metadata={"k": "v"})
    retrieved = client.conversations.retrieve(created.id)
    assert retrieved.model_dump() == created.model_dump()


def test_update_replaces_metadata_and_null_clears(client: openai.OpenAI) -> None:
    conversation = client.conversations.create(metadata={"topic": "demo", "other": "x"})
    updated = client.conversations.update(conversation.id, metadata={"topic": "project-x"})
    assert updated.id == conversation.id
    assert updated.created_at == conversation.created_at
    assert updated.metadata == {"topic": "project-x"}
    assert client.conversations.retrieve(conversation.id).metadata == {"topic": "project-x"}

    cleared = client.conversations.update(conversation.id, metadata=None)
    assert cleared.metadata == {}
    assert client.conversations.retrieve(conversation.id).metadata == {}


def test_delete_then_everything_is_gone(client: openai.OpenAI) -> None:
    conversation = client.conversations.create(items=[{"role": "user", "content": "bye"}])
    item_id = client.conversations.items.list(conversation.id).data[0].id
    assert item_id is not None

    deleted = client.conversations.delete(conversation.id)
    assert deleted.id == conversation.id
    assert deleted.deleted is True
    assert deleted.object == "conversation.deleted"

    for call in (
        lambda: client.conversations.retrieve(conversation.id),
        lambda: client.conversations.items.list(conversation.id),
        lambda: client.conversations.items.retrieve(item_id, conversation_id=conversation.id),
        lambda: client.conversations.delete(conversation.id),
        lambda: client.conversations.update(conversation.id, metadata={"a": "b"}),
    ):
        with pytest.raises(openai.NotFoundError) as caught:
            call()
        assert caught.value.status_code == 404
        assert caught.value.type == "invalid_request_error"
        assert caught.value.code is None
        assert caught.value.message.endswith(f"Conversation with id '{conversation.id}' not found.")


def test_unknown_conversation_is_404_in_the_openai_error_body(client: openai.OpenAI) -> None:
    missing = "conv_zzzzzzzzz5dc81908289d62779d2ac510a2b0b602ef00a44"
    with pytest.raises(openai.NotFoundError) as caught:
        client.conversations.retrieve(missing)
    body = caught.value.body
    assert body == {
        "message": f"Conversation with id '{missing}' not found.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
