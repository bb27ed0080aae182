"""Quotas per principal on SQLite (storage/quotas.py): each function runs inside the
write transaction of the store call it serves, which holds SQLite's write lock, so a
check and the write it allows are one step."""

from __future__ import annotations

import sqlite3

from convostack.storage.quotas import RECOUNT, Quotas


def use(conn: sqlite3.Connection, quotas: Quotas, owner: str, adding: tuple[int, int, int]) -> None:
    """Adds to the owner's usage (negative: frees), raising QuotaExceeded past a quota."""
    row = conn.execute(
        "INSERT INTO principal_usage AS u (owner, conversations, items, bytes) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (owner) DO UPDATE SET "
        "conversations = u.conversations + excluded.conversations, "
        "items = u.items + excluded.items, bytes = u.bytes + excluded.bytes "
        "RETURNING conversations, items, bytes",
        (owner, *adding),
    ).fetchone()
    quotas.check(row, adding)


def live(conn: sqlite3.Connection, conversation_id: str) -> tuple[int, int]:
    """How many live items the conversation holds, and their bytes."""
    row = conn.execute(
        "SELECT count(*), coalesce(sum(length(body)), 0) FROM items "
        "WHERE conversation_id = ? AND body IS NOT NULL",
        (conversation_id,),
    ).fetchone()
    return row[0], row[1]


def item_bytes(conn: sqlite3.Connection, conversation_id: str, item_id: str) -> int:
    row = conn.execute(
        "SELECT length(body) FROM items WHERE conversation_id = ? AND id = ? AND body IS NOT NULL",
        (conversation_id, item_id),
    ).fetchone()
    return 0 if row is None else int(row[0])


def recount(conn: sqlite3.Connection) -> None:
    """Every owner's usage counted again, in one write transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("DELETE FROM principal_usage")
        conn.execute(RECOUNT.format(length="length"))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
