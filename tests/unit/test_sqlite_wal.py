"""The SQLite store's WAL stays bounded under a steady stream of writes: checkpoints run
on their own thread, and a long WAL is rewound (storage/worker.py, Checkpointer), the
database file synced first without a lock."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from convostack.storage import worker
from convostack.storage.base import ConversationRow, NewItem
from convostack.storage.sqlite import SqliteStore

OWNER = "tenant"
CONVERSATIONS = 50
ROUNDS = 30
CHECKPOINT_EVERY = 4


def _size(path: Path) -> int:
    return path.stat().st_size


def _item(n: int) -> NewItem:
    body = f'{{"id":"msg_{n}","type":"message","text":"{"x" * 200}"}}'.encode()
    return NewItem(id=f"msg_{n}", type="message", body=body)


async def test_the_wal_stays_bounded_under_steady_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "CHECKPOINT_EVERY_COMMITS", CHECKPOINT_EVERY)
    monkeypatch.setattr(worker, "RESTART_FRAMES", 64)
    monkeypatch.setattr(worker, "OVERDUE_BYTES", 2 * 2**20)
    synced: list[int] = []

    def sync(fd: int) -> None:
        synced.append(fd)
        os.fsync(fd)

    monkeypatch.setattr(worker, "_sync_data", sync)
    path = tmp_path / "wal.db"
    store = SqliteStore(path)
    await store.start()
    try:
        ids = [f"conv_{n}" for n in range(CONVERSATIONS)]
        for cid in ids:
            await store.create_conversation(OWNER, ConversationRow(cid, 1, {}), [])
        sizes = []
        for burst in range(3):
            for round_ in range(ROUNDS):  # back to back: no pause for a checkpoint
                first = (burst * ROUNDS + round_) * CONVERSATIONS
                await asyncio.gather(
                    *(store.append_items(OWNER, cid, [_item(first + n)])
                      for n, cid in enumerate(ids))
                )  # fmt: skip
            sizes.append(await asyncio.to_thread(_size, Path(f"{path}-wal")))
        # However far the checkpointer falls behind, the WAL file ends no larger than the
        # overdue bound plus the few commits (of 50 items each) written before the check.
        assert max(sizes) <= 2 * 2**20 + CHECKPOINT_EVERY * 50 * 4 * 4200, sizes
        page = await store.list_items(OWNER, ids[0], after=None, limit=100, order="asc")
        assert len(page.ids) == 3 * ROUNDS
        assert synced, "no rewind synced the database file first"
    finally:
        await store.close()
    # Its descriptor is closed with the store, after the connections (POSIX locks).
    assert store._checkpointer._database_file is None
    assert not worker._SharedFile._open


async def test_stores_on_one_file_share_its_descriptor_until_the_last_closes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.db"
    first, second = SqliteStore(path), SqliteStore(path)
    await first.start()
    await second.start()
    shared = first._checkpointer._database_file
    assert shared is not None
    assert shared is second._checkpointer._database_file
    await first.close()
    os.fstat(shared.fd)  # still open: the second store's locks are still the process's
    await second.close()
    assert not worker._SharedFile._open
