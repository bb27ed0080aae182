"""The store's side of file expiry, on SQLite and PostgreSQL: an expired file is not
read, listed or attached, and `delete_expired_files` deletes expired files (with their
places in vector stores) in batches, leaving the others."""

from __future__ import annotations

import time

import pytest

from convostack.storage.base import Store
from convostack.storage.files_base import FileMissing, FileRow, NewStoreFile, VectorStoreRow
from convostack.vector_stores.models import AUTO_CHUNKING

OWNER = "tenant"


async def _file(store: Store, file_id: str, expires_at: int | None) -> None:
    now = int(time.time())
    row = FileRow(file_id, now, f"{file_id}.txt", "assistants", 1, expires_at, "text/plain")
    await store.create_file(OWNER, row, b"x")


async def test_expired_files_are_not_read_and_are_deleted_in_batches(store: Store) -> None:
    now = int(time.time())
    await _file(store, "kept", None)
    await _file(store, "later", now + 3600)
    await _file(store, "attached", now + 3600)
    vector_store = VectorStoreRow("vs_a", now, "s", {}, None, now, "testing-hash", 256)
    await store.create_vector_store(
        OWNER, vector_store, [NewStoreFile("attached", {}, AUTO_CHUNKING)], None
    )
    for n in range(5):
        await _file(store, f"gone{n}", now - 10)
    with pytest.raises(FileMissing):
        await store.get_file(OWNER, "gone0")
    with pytest.raises(FileMissing):
        await store.file_data(OWNER, "gone0")
    with pytest.raises(FileMissing):
        await store.add_store_files(OWNER, "vs_a", [NewStoreFile("gone1", {}, AUTO_CHUNKING)],
                                    None)  # fmt: skip
    listed, more = await store.list_files(OWNER, after=None, limit=100, order="asc", purpose=None)
    assert [f.id for f in listed] == ["kept", "later", "attached"]
    assert not more

    assert await store.delete_expired_files(now, 2) == 2
    assert await store.delete_expired_files(now, 100) == 3
    assert await store.delete_expired_files(now, 100) == 0
    # An hour later "later" and "attached" expire; "attached" leaves its store too.
    assert await store.delete_expired_files(now + 3600, 100) == 2
    assert (await store.get_file(OWNER, "kept")).id == "kept"
    assert sum((await store.get_vector_store(OWNER, "vs_a")).counts.values()) == 0
