"""SQL for stored responses and turns on SQLite; each function runs on the caller's
connection, inside the transaction its worker opened."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import orjson

from convostack.storage import sqlite_pages as pages
from convostack.storage.base import (
    Order,
    ResponseMissing,
    ResponsePage,
    StoredResponse,
)

# A previous_response_id chain longer than this is cut (its oldest part is dropped).
MAX_CHAIN = 10_000

_COLUMNS = "id, created_at, model, status, conversation_id, previous_response_id, body, input_items"


def _row(row: tuple[str, int, str, str, str | None, str | None, bytes, bytes]) -> StoredResponse:
    return StoredResponse(*row)


def insert_response(conn: sqlite3.Connection, owner: str, response: StoredResponse) -> None:
    conn.execute(
        "INSERT INTO responses (id, owner, created_at, model, status, conversation_id, "
        "previous_response_id, body, input_items) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET status = excluded.status, body = excluded.body",
        (
            response.id,
            owner,
            response.created_at,
            response.model,
            response.status,
            response.conversation_id,
            response.previous_response_id,
            response.body,
            response.input_items,
        ),
    )


def get_response(conn: sqlite3.Connection, owner: str, response_id: str) -> StoredResponse:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM responses WHERE id = ? AND owner = ?", (response_id, owner)
    ).fetchone()
    if row is None:
        raise ResponseMissing(response_id)
    return _row(row)


def response_chain(conn: sqlite3.Connection, owner: str, response_id: str) -> list[StoredResponse]:
    # One recursive query walks the whole chain, however long.
    rows = conn.execute(
        f"""
        WITH RECURSIVE chain(id, depth) AS (
            SELECT id, 0 FROM responses WHERE id = ? AND owner = ?
            UNION ALL
            SELECT r.previous_response_id, chain.depth + 1
            FROM chain JOIN responses r ON r.id = chain.id
            WHERE r.previous_response_id IS NOT NULL AND chain.depth < {MAX_CHAIN}
        )
        SELECT {", ".join("r." + c.strip() for c in _COLUMNS.split(","))}
        FROM chain JOIN responses r ON r.id = chain.id AND r.owner = ?
        ORDER BY chain.depth DESC
        """,
        (response_id, owner, owner),
    ).fetchall()
    if not rows or rows[-1][0] != response_id:
        raise ResponseMissing(response_id)
    return [_row(r) for r in rows]


def responses_version(
    conn: sqlite3.Connection, owner: str, response_ids: Sequence[str]
) -> tuple[int, int]:
    row = conn.execute(
        "SELECT count(*), coalesce(sum(length(body)), 0) FROM responses "
        "WHERE owner = ? AND id IN (SELECT value FROM json_each(?))",
        (owner, orjson.dumps(list(response_ids)).decode()),
    ).fetchone()
    return row[0], row[1]


def delete_response(conn: sqlite3.Connection, owner: str, response_id: str) -> None:
    deleted = conn.execute(
        "DELETE FROM responses WHERE id = ? AND owner = ?", (response_id, owner)
    ).rowcount
    if not deleted:
        raise ResponseMissing(response_id)


def list_responses(
    conn: sqlite3.Connection,
    owner: str,
    *,
    after: str | None,
    limit: int,
    order: Order,
    model: str | None,
) -> ResponsePage:
    model_filter = "AND model = ?" if model is not None else ""
    rows, has_more = pages.page(
        conn, "responses", "id, body", owner, after=after, limit=limit, order=order,
        where=model_filter, params=(model,) if model is not None else (),
    )  # fmt: skip
    return ResponsePage([r[0] for r in rows], [r[1] for r in rows], has_more)
