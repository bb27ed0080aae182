"""Cursor pages on SQLite: one owner's rows of a table in `pos` order, starting after the
row whose id the cursor names (responses, conversations, files and vector stores are
listed this way; a vector store's files by its id instead of an owner)."""

from __future__ import annotations

import sqlite3
from typing import Any

from convostack.storage.base import CursorMissing, Order


def page(
    conn: sqlite3.Connection,
    table: str,
    columns: str,
    owner: str,
    *,
    after: str | None,
    limit: int,
    order: Order,
    where: str = "",
    params: tuple[object, ...] = (),
    scope: str = "owner",
    key: str = "id",
) -> tuple[list[Any], bool]:
    """Up to `limit` rows of `columns`, and whether more follow. `where` adds conditions
    (starting with AND) whose placeholders `params` fill. The rows are those whose
    `scope` column is `owner`; the cursor names a row by its `key` column. Raises
    CursorMissing."""
    if after is None:
        bound = -1 if order == "asc" else 1 << 62
    else:
        row = conn.execute(
            f"SELECT pos FROM {table} WHERE {key} = ? AND {scope} = ?", (after, owner)
        ).fetchone()
        if row is None:
            raise CursorMissing(after)
        bound = row[0]
    comparison, direction = (">", "ASC") if order == "asc" else ("<", "DESC")
    rows = conn.execute(
        f"SELECT {columns} FROM {table} WHERE {scope} = ? AND pos {comparison} ? {where} "
        f"ORDER BY pos {direction} LIMIT ?",
        (owner, bound, *params, limit + 1),
    ).fetchall()
    return rows[:limit], len(rows) > limit
