"""Conversation items: create, list with cursors in both orders, retrieve, delete."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence
from typing import Any

import httpx2
import openai
import pytest
from openai.types.conversations import Message


def _texts(items: Sequence[object]) -> list[str]:
    out = []
    for item in items:
        assert isinstance(item, Message)
        part = item.content[0]
        out.append(getattr(part, "text", ""))
    return out


def _conversation_with(client: openai.OpenAI, count: int) -> tuple[str, list[str]]:
    """A conversation holding messages 'm0'...'m{count-1}', appended in order; their ids."""
    conversation = client.conversations.create()
    ids: list[str] = []
    for start in range(0, count, 20):
        batch: list[Any] = [
            {"role": "user", "content": f"m{n}"} for n in range(start, min(count, start + 20))
        ]
        created = client.conversations.items.create(conversation.id, items=batch)
        ids += [item.id for item in created.data if item.id is not None]
    return conversation.id, ids


def test_items_create_returns_the_stored_items(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()
    created = client.conversations.items.create(
        conversation.id,
        items=[
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Hello!"}],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "How are you?"}],
            },
        ],
    )
    assert created.object == "list"
    assert created.has_more is False
    assert _texts(created.data) == ["Hello!", "How are you?"]
    assert created.first_id == created.data[0].id
    assert created.last_id == created.data[1].id
    assert len({item.id for item in created.data}) == 2


def test_list_defaults_to_newest_first(client: openai.OpenAI, http: httpx2.Client) -> None:
    conversation_id, ids = _conversation_with(client, 3)
    page = client.conversations.items.list(conversation_id)
    assert [item.id for item in page.data] == ids[::-1]
    assert page.last_id == ids[0]
    assert page.has_more is False
    raw = http.get(f"/v1/conversations/{conversation_id}/items").json()
    assert raw["object"] == "list"
    assert raw["first_id"] == ids[-1]
    assert raw["last_id"] == ids[0]


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_cursor_pages_walk_every_item_once(client: openai.OpenAI, order: str) -> None:
    conversation_id, ids = _conversation_with(client, 7)
    expected = ids if order == "asc" else ids[::-1]
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page = client.conversations.items.list(
            conversation_id,
            limit=3,
            order=order,  # type: ignore[arg-type]
            after=after if after is not None else openai.omit,
        )
        pages += 1
        seen += [item.id for item in page.data if item.id is not None]
        assert page.last_id == page.data[-1].id
        if not page.has_more:
            break
        after = page.last_id
    assert seen == expected
    assert pages == 3  # 3 + 3 + 1


def test_exact_page_boundary_has_no_phantom_next_page(client: openai.OpenAI) -> None:
    conversation_id, ids = _conversation_with(client, 4)
    first = client.conversations.items.list(conversation_id, limit=2, order="asc")
    assert first.has_more is True
    assert first.last_id is not None
    second = client.conversations.items.list(
        conversation_id, limit=2, order="asc", after=first.last_id
    )
    assert [i.id for i in second.data] == ids[2:]
    assert second.has_more is False


def test_auto_paginator_walks_25_plus_items(client: openai.OpenAI) -> None:
    conversation_id, ids = _conversation_with(client, 27)
    walked = [item.id for item in client.conversations.items.list(conversation_id, limit=10)]
    assert walked == ids[::-1]
    walked_asc = [item.id for item in client.conversations.items.list(conversation_id, order="asc")]
    assert walked_asc == ids
    assert _texts(list(client.conversations.items.list(conversation_id, order="asc"))) == [
        f"m{n}" for n in range(27)
    ]


def test_retrieve_item(client: openai.OpenAI) -> None:
    conversation_id, ids = _conversation_with(client, 2)
    item = client.conversations.items.retrieve(ids[1], conversation_id=conversation_id)
    assert item.id == ids[1]
    assert _texts([item]) == ["m1"]


def test_delete_item_returns_the_conversation_and_removes_only_that_item(
    client: openai.OpenAI,
) -> None:
    conversation_id, ids = _conversation_with(client, 3)
    result = client.conversations.items.delete(ids[1], conversation_id=conversation_id)
    assert result.object == "conversation"
    assert result.id == conversation_id
    remaining = [i.id for i in client.conversations.items.list(conversation_id, order="asc")]
    assert remaining == [ids[0], ids[2]]
    with pytest.raises(openai.NotFoundError) as caught:
        client.conversations.items.retrieve(ids[1], conversation_id=conversation_id)
    assert caught.value.message.endswith(f"Item with id '{ids[1]}' not found.")
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.delete(ids[1], conversation_id=conversation_id)


def test_cursor_on_a_deleted_item_still_pages(client: openai.OpenAI) -> None:
    conversation_id, ids = _conversation_with(client, 4)
    client.conversations.items.delete(ids[1], conversation_id=conversation_id)
    page = client.conversations.items.list(conversation_id, order="asc", after=ids[1])
    assert [i.id for i in page.data] == ids[2:]


def test_unknown_item_in_known_conversation_is_404(client: openai.OpenAI) -> None:
    conversation_id, _ = _conversation_with(client, 1)
    with pytest.raises(openai.NotFoundError) as caught:
        client.conversations.items.retrieve("msg_doesnotexist", conversation_id=conversation_id)
    assert caught.value.body == {
        "message": "Item with id 'msg_doesnotexist' not found.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def test_item_of_another_conversation_is_404(client: openai.OpenAI) -> None:
    _, ids = _conversation_with(client, 1)
    other = client.conversations.create()
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.retrieve(ids[0], conversation_id=other.id)


def test_include_is_accepted_in_the_query(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()
    created = client.conversations.items.create(
        conversation.id,
        items=[{"role": "user", "content": "hi"}],
        include=["message.input_image.image_url", "message.output_text.logprobs"],
    )
    assert len(created.data) == 1
    page = client.conversations.items.list(conversation.id, include=["reasoning.encrypted_content"])
    assert len(page.data) == 1


def test_20_concurrent_items_create_calls_all_land_once_in_one_order(
    client: openai.OpenAI,
) -> None:
    conversation = client.conversations.create()

    def add(n: int) -> list[str]:
        created = client.conversations.items.create(
            conversation.id,
            items=[
                {"role": "user", "content": f"call{n}-a"},
                {"role": "user", "content": f"call{n}-b"},
            ],
        )
        return [item.id for item in created.data if item.id is not None]

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(add, range(20)))

    listed = list(client.conversations.items.list(conversation.id, order="asc", limit=100))
    listed_ids = [item.id for item in listed]
    assert len(listed_ids) == 40
    assert len(set(listed_ids)) == 40
    assert sorted(str(i) for i in listed_ids) == sorted(i for pair in results for i in pair)
    # Each call's two items are appended as one block.
    texts = _texts(listed)
    for n in range(20):
        at = texts.index(f"call{n}-a")
        assert texts[at + 1] == f"call{n}-b"
    # Every reader sees the same order.
    again = [item.id for item in client.conversations.items.list(conversation.id, order="asc")]
    assert again == listed_ids
    newest_first = [item.id for item in client.conversations.items.list(conversation.id)]
    assert newest_first == listed_ids[::-1]
