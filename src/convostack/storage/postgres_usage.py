"""Quotas per principal on PostgreSQL (storage/quotas.py). A write under quotas runs in a
transaction that first locks the owner's usage row (adding to it, or FOR UPDATE), then
writes: the owner's writes queue on that lock, so each check sees the count the one
before it left; always the usage row first, then the conversation's, so two writes
never wait for each other in a cycle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from convostack.storage.quotas import RECOUNT, Quotas

USE = """
INSERT INTO principal_usage AS u (owner, conversations, items, bytes) VALUES ($1, $2, $3, $4)
ON CONFLICT (owner) DO UPDATE SET conversations = u.conversations + excluded.conversations,
    items = u.items + excluded.items, bytes = u.bytes + excluded.bytes
RETURNING conversations, items, bytes"""

LOCK = "SELECT 1 FROM principal_usage WHERE owner = $1 FOR UPDATE"

# A conversation's live items and their bytes (lengths from the values' headers: TOASTed
# bodies are not read). No row: the conversation is missing.
LIVE = """
SELECT live_items, (
    SELECT coalesce(sum(octet_length(body)), 0) FROM items
    WHERE conversation_id = $1 AND body IS NOT NULL
) FROM conversations WHERE id = $1 AND owner = $2"""

ITEM_BYTES = """
SELECT octet_length(body) FROM items WHERE conversation_id = $1 AND id = $2
AND body IS NOT NULL"""


class _Undone(Exception):
    """Rolls a write's transaction back when its statement wrote nothing."""

    def __init__(self, row: Any):
        self.row = row


async def write(
    conn: Any,
    quotas: Quotas,
    owner: str,
    adding: tuple[int, int, int],
    statement: str,
    args: tuple[object, ...],
    landed: Callable[[Any], bool],
) -> Any:
    """Runs a statement that adds to the owner's usage, in one transaction with the
    usage check; when `landed` says it wrote nothing, the usage is not kept either."""
    try:
        async with conn.transaction():
            quotas.check(tuple(await conn.fetchrow(USE, owner, *adding)), adding)
            row = await conn.fetchrow(statement, *args)
            if not landed(row):
                raise _Undone(row)
            return row
    except _Undone as undone:
        return undone.row


async def recount(conn: Any) -> None:
    """Every owner's usage counted again, writers held off meanwhile (SHARE mode lets
    reads through)."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE conversations, items IN SHARE MODE")
        await conn.execute("DELETE FROM principal_usage")
        await conn.execute(RECOUNT.format(length="octet_length"))
