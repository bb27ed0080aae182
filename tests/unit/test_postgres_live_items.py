"""The PostgreSQL store's per-conversation item count (conversations.live_items): kept
by every write, filled in for existing conversations by its migration, and exact under
concurrent appends and deletes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from convostack.storage.base import ConversationFull, ConversationRow, NewItem, Turn
from convostack.storage.postgres import PostgresStore
from convostack.testing.postgres import with_query

OWNER = "o"


@pytest.fixture
async def store(schema_url: str) -> AsyncIterator[PostgresStore]:
    opened = PostgresStore(with_query(schema_url, pool_max_size="12"))
    await opened.start()
    try:
        yield opened
    finally:
        await opened.close()


def _items(*ids: str) -> list[NewItem]:
    return [NewItem(i, "message", b'{"id":"%s"}' % i.encode()) for i in ids]


async def _counted(url: str, conversation_id: str) -> tuple[int, int]:
    """The kept count and the count of live item rows."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT live_items, (SELECT count(*) FROM items WHERE conversation_id = $1 "
            "AND body IS NOT NULL) FROM conversations WHERE id = $1",
            conversation_id,
        )
    finally:
        await conn.close()
    assert row is not None
    return row[0], row[1]


async def test_every_write_keeps_the_count(store: PostgresStore, schema_url: str) -> None:
    await store.create_conversation(OWNER, ConversationRow("conv_k", 1, {}), _items("a", "b"))
    assert await store.item_count(OWNER, "conv_k") == 2
    await store.append_items(OWNER, "conv_k", _items("c"))
    await store.save_turn(OWNER, Turn("conv_k", _items("d", "e"), None))
    await store.delete_item(OWNER, "conv_k", "a")
    await store.delete_item(OWNER, "conv_k", "d")
    assert await _counted(schema_url, "conv_k") == (3, 3)
    await store.create_conversation(OWNER, ConversationRow("conv_e", 1, {}), [])
    assert await store.item_count(OWNER, "conv_e") == 0


async def test_concurrent_appends_and_deletes_never_pass_the_limit(
    store: PostgresStore, schema_url: str
) -> None:
    limit = 30
    await store.create_conversation(
        OWNER, ConversationRow("conv_c", 1, {}), _items(*(f"s{n}" for n in range(limit - 4)))
    )

    async def append(n: int) -> str:
        try:
            await store.append_items(OWNER, "conv_c", _items(f"c{n}", f"d{n}"), max_items=limit)
        except ConversationFull as full:
            return "full" if full.held + 2 > limit else f"full at {full.held}"
        return "ok"

    async def delete(n: int) -> None:
        await store.delete_item(OWNER, "conv_c", f"s{n}")

    outcomes = await asyncio.gather(*(append(n) for n in range(24)), *(delete(n) for n in range(6)))
    assert "full" in outcomes
    live, rows = await _counted(schema_url, "conv_c")
    assert live == rows <= limit
    # Every delete made room for one item; appends came two at a time.
    assert outcomes.count("ok") * 2 + limit - 4 - 6 == rows


async def test_the_migration_counts_existing_conversations(schema_url: str) -> None:
    store = PostgresStore(schema_url)
    await store.start()
    try:
        await store.create_conversation(OWNER, ConversationRow("conv_b", 1, {}), _items("a", "b"))
        await store.create_conversation(OWNER, ConversationRow("conv_0", 1, {}), [])
        await store.delete_item(OWNER, "conv_b", "a")
    finally:
        await store.close()
    conn = await asyncpg.connect(schema_url)
    try:  # as before migration 3
        await conn.execute("ALTER TABLE conversations DROP COLUMN live_items")
        await conn.execute("DELETE FROM schema_migrations WHERE version = 3")
    finally:
        await conn.close()
    store = PostgresStore(schema_url)
    await store.start()
    try:
        assert await store.item_count(OWNER, "conv_b") == 1
        assert await store.item_count(OWNER, "conv_0") == 0
    finally:
        await store.close()
