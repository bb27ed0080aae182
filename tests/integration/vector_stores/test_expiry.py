"""Expiry: a file past its `expires_after` is gone for every read at once (retrieve,
content, list, attach, search) and then deleted by the sweep, its place in vector stores
too; a vector store past its `expires_after` is `expired` and cannot be searched, by the
API or by `file_search`; a search is activity that moves `last_active_at`. The clock is
moved by writing the rows (testing/database.py): nothing else can make an hour pass."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest

from convostack.testing.database import execute
from convostack.testing.stack import Target
from convostack.testing.upstream import FAKE_MODEL

DAY = 86400


def _db(stack_target: Target) -> str:
    assert stack_target.db is not None
    return stack_target.db


def test_an_expired_file_is_gone_at_once_then_swept(
    client: openai.OpenAI, stack_target: Target
) -> None:
    document = client.files.create(
        file=("soon.txt", b"the lighthouse keeper rows out at dawn"), purpose="assistants",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )  # fmt: skip
    assert document.expires_at == document.created_at + 3600
    store = client.vector_stores.create(name="expiring files", file_ids=[document.id])
    done = client.vector_stores.files.poll(document.id, vector_store_id=store.id,
                                           poll_interval_ms=100)  # fmt: skip
    assert done.status == "completed"
    assert client.vector_stores.search(store.id, query="lighthouse keeper").data

    execute(_db(stack_target), "UPDATE files SET expires_at = ? WHERE id = ?",
            int(time.time()) - 1, document.id)  # fmt: skip
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(document.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(document.id)
    assert document.id not in {f.id for f in client.files.list(limit=100)}
    assert client.vector_stores.search(store.id, query="lighthouse keeper").data == []
    other = client.vector_stores.create(name="too late")
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.create(vector_store_id=other.id, file_id=document.id)

    deadline = time.monotonic() + 10
    while execute(_db(stack_target), "SELECT 1 FROM files WHERE id = ?", document.id):
        assert time.monotonic() < deadline, "the sweep did not delete the expired file"
        time.sleep(0.1)
    assert client.vector_stores.retrieve(store.id).file_counts.total == 0


def test_an_expired_vector_store_cannot_be_searched(client: openai.OpenAI,
                                                    stack_target: Target) -> None:  # fmt: skip
    store = client.vector_stores.create(
        name="short-lived", expires_after={"anchor": "last_active_at", "days": 1}
    )
    assert client.vector_stores.retrieve(store.id).status == "completed"
    execute(_db(stack_target), "UPDATE vector_stores SET last_active_at = ? WHERE id = ?",
            int(time.time()) - 2 * DAY, store.id)  # fmt: skip
    expired = client.vector_stores.retrieve(store.id)
    assert expired.status == "expired"
    assert expired.expires_at is not None
    assert expired.expires_at < time.time()
    with pytest.raises(openai.BadRequestError) as searched:
        client.vector_stores.search(store.id, query="anything")
    assert searched.value.code == "vector_store_expired"
    tools: Any = [{"type": "file_search", "vector_store_ids": [store.id]}]
    with pytest.raises(openai.BadRequestError) as turned:
        client.responses.create(model=FAKE_MODEL, tools=tools, input="hello")
    assert turned.value.code == "vector_store_expired"
    assert turned.value.param == "tools[0].vector_store_ids[0]"


def test_a_search_moves_last_active_at(client: openai.OpenAI, stack_target: Target) -> None:
    store = client.vector_stores.create(
        name="kept alive", expires_after={"anchor": "last_active_at", "days": 1}
    )
    two_hours_ago = int(time.time()) - 7200
    execute(_db(stack_target), "UPDATE vector_stores SET last_active_at = ? WHERE id = ?",
            two_hours_ago, store.id)  # fmt: skip
    assert client.vector_stores.retrieve(store.id).last_active_at == two_hours_ago
    client.vector_stores.search(store.id, query="anything")
    moved = client.vector_stores.retrieve(store.id)
    assert moved.last_active_at is not None
    assert moved.last_active_at >= time.time() - 60
    assert moved.expires_at == moved.last_active_at + DAY
