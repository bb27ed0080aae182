"""SQL for stored responses on PostgreSQL, and the rows it returns turned into values."""

from __future__ import annotations

import dataclasses
from typing import Any

from convostack.storage.base import Order, StoredResponse

# A previous_response_id chain longer than this is cut (its oldest part is dropped).
MAX_CHAIN = 10_000

# The columns are StoredResponse's fields, in order.
_FIELDS = [f.name for f in dataclasses.fields(StoredResponse)]
_COLUMNS = ", ".join(_FIELDS)

# `INSERT ... SELECT` so that a turn's statement can add a WHERE; {params} are the
# placeholders of the owner and the eight columns above.
INSERT_SELECT = f"INSERT INTO responses (owner, {_COLUMNS}) SELECT {{params}}"
ON_CONFLICT = "ON CONFLICT (id) DO UPDATE SET status = excluded.status, body = excluded.body"
# In a turn's statement the owner is $2 and the items take $1-$6.
TURN_PARAMS = "$2, " + ", ".join(f"${n}" for n in range(7, 15))

INSERT = f"{INSERT_SELECT.format(params=', '.join(f'${n}' for n in range(1, 10)))} {ON_CONFLICT}"

GET = f"SELECT {_COLUMNS} FROM responses WHERE id = $1 AND owner = $2"

DELETE = "DELETE FROM responses WHERE id = $1 AND owner = $2 RETURNING id"

# One recursive query walks the whole chain, however long, oldest first. Each step
# carries its row, so no join with the whole table follows; the walk stays within the
# owner's responses and stops at a deleted one.
CHAIN = f"""
WITH RECURSIVE chain AS (
    SELECT {_COLUMNS}, 0 AS depth FROM responses WHERE id = $1 AND owner = $2
    UNION ALL
    SELECT {", ".join("r." + name for name in _FIELDS)}, chain.depth + 1
    FROM chain JOIN responses r ON r.id = chain.previous_response_id AND r.owner = $2
    WHERE chain.depth < {MAX_CHAIN}
)
SELECT {_COLUMNS} FROM chain ORDER BY depth DESC"""


def _list_sql(order: Order) -> str:
    # Always at least one row: `cursor_found` (false for an unknown `after`), then the
    # page's id and body (NULL for an empty page).
    comparison, direction, start = (">", "ASC", -1) if order == "asc" else ("<", "DESC", 2**63 - 1)
    return f"""
SELECT ($2::text IS NULL OR after_row.pos IS NOT NULL) AS cursor_found, page.id, page.body
FROM (SELECT 1) one
LEFT JOIN responses after_row ON after_row.id = $2 AND after_row.owner = $1
LEFT JOIN LATERAL (
    SELECT r.id, r.body FROM responses r
    WHERE r.owner = $1 AND ($3::text IS NULL OR r.model = $3)
      AND r.pos {comparison} CASE WHEN $2::text IS NULL THEN {start} ELSE after_row.pos END
    ORDER BY r.pos {direction} LIMIT $4
) page ON true"""


LIST = {"asc": _list_sql("asc"), "desc": _list_sql("desc")}


def turn_args(response: StoredResponse) -> tuple[object, ...]:
    return tuple(getattr(response, name) for name in _FIELDS)


def insert_args(owner: str, response: StoredResponse) -> tuple[object, ...]:
    return (owner, *turn_args(response))


def stored(row: Any) -> StoredResponse:
    return StoredResponse(*row)
