"""The conversation part of the seed pull request's manual test script, call by call,
with what each call must return according to the wire reference."""

from __future__ import annotations

import openai
import pytest
from openai.types.conversations import Message


def test_seed_manual_script_conversation_part(client: openai.OpenAI) -> None:
    # test_conversation_create
    conversation = client.conversations.create(
        metadata={"topic": "demo"},
        items=[{"type": "message", "role": "user", "content": "Hello!"}],
    )
    conv_id = conversation.id
    assert conv_id.startswith("conv_")
    assert conversation.metadata == {"topic": "demo"}

    # test_conversation_retrieve
    retrieved = client.conversations.retrieve(conv_id)
    assert retrieved.id == conv_id
    assert retrieved.metadata == {"topic": "demo"}

    # test_conversation_update
    updated = client.conversations.update(conv_id, metadata={"topic": "project-x"})
    assert updated.metadata == {"topic": "project-x"}

    # test_conversation_items_create
    items = client.conversations.items.create(
        conv_id,
        items=[
            {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": "Hello!"}]},
            {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": "How are you?"}]},
        ],
    )  # fmt: skip
    assert items.object == "list"
    assert len(items.data) == 2

    # test_conversation_items_list (limit=10, default order desc: newest first)
    items_list = client.conversations.items.list(conv_id, limit=10)
    texts = []
    for item in items_list.data:
        assert isinstance(item, Message)
        texts.append(getattr(item.content[0], "text", None))
    assert texts == ["How are you?", "Hello!", "Hello!"]
    assert items_list.has_more is False

    # test_conversation_item_retrieve
    item_id = items_list.data[0].id
    assert item_id is not None
    item = client.conversations.items.retrieve(conversation_id=conv_id, item_id=item_id)
    assert item.id == item_id

    # test_conversation_item_delete: returns the conversation
    deleted_item = client.conversations.items.delete(conversation_id=conv_id, item_id=item_id)
    assert deleted_item.object == "conversation"
    assert deleted_item.id == conv_id
    assert len(client.conversations.items.list(conv_id).data) == 2

    # test_conversation_delete
    deleted = client.conversations.delete(conv_id)
    assert (deleted.id, deleted.deleted, deleted.object) == (conv_id, True, "conversation.deleted")
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv_id)
