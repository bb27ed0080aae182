"""Writes that find SQLite's write lock taken by another process: a short hold is waited
out on the event loop (the writes queued meanwhile joining the batch), a long one by the
writer thread; either way every write lands once, in order."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from convostack.storage import worker
from convostack.storage.base import ConversationRow, NewItem
from convostack.storage.sqlite import SqliteStore

OWNER = "tenant"


def _hold_write_lock(path: Path, seconds: float, taken: threading.Event) -> None:
    """Another process's writer, as seen by SQLite: a second connection in a transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    taken.set()
    time.sleep(seconds)
    conn.execute("COMMIT")
    conn.close()


@pytest.mark.parametrize(
    ("hold_s", "via_thread"), [(0.005, False), (0.2, True)], ids=["short", "long"]
)
async def test_writes_wait_for_another_writer_and_all_land_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hold_s: float, via_thread: bool
) -> None:
    path = tmp_path / "busy.db"
    store = SqliteStore(path)
    await store.start()
    handed_over: list[object] = []
    submit = store._writer.submit

    def counting_submit(job: worker._Job) -> None:
        handed_over.append(job)
        submit(job)

    monkeypatch.setattr(store._writer, "submit", counting_submit)
    try:
        await store.create_conversation(OWNER, ConversationRow("conv_b", 1, {}), [])
        taken = threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(path, hold_s, taken))
        holder.start()
        await asyncio.to_thread(taken.wait)
        appends = [
            store.append_items(OWNER, "conv_b", [NewItem(f"i{n}", "message", b"{}")])
            for n in range(5)
        ]
        await asyncio.gather(*appends)
        holder.join()
        page = await store.list_items(OWNER, "conv_b", after=None, limit=10, order="asc")
        assert page.ids == [f"i{n}" for n in range(5)]
        assert bool(handed_over) is via_thread
    finally:
        await store.close()
