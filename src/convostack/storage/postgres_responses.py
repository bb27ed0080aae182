"""SQL for stored responses on PostgreSQL, and the rows it returns turned into values."""

from __future__ import annotations

import dataclasses
from typing import Any

from convostack.storage.base import StoredResponse
from convostack.storage.postgres_pages import list_sql

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

VERSION = """SELECT count(*), coalesce(sum(octet_length(body)), 0) FROM responses
WHERE owner = $1 AND id = ANY($2::text[])"""

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


_MODEL = "$3::text IS NULL OR r.model = $3"


LIST = {
    "asc": list_sql("responses", "id, body", _MODEL, "asc"),
    "desc": list_sql("responses", "id, body", _MODEL, "desc"),
}


def turn_args(response: StoredResponse) -> tuple[object, ...]:
    return tuple(getattr(response, name) for name in _FIELDS)


def insert_args(owner: str, response: StoredResponse) -> tuple[object, ...]:
    return (owner, *turn_args(response))


def stored(row: Any) -> StoredResponse:
    return StoredResponse(*row)
