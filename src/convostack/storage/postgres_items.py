"""SQL for conversations and items on PostgreSQL: one statement per store call.

Parameters: $1 the conversation id, $2 the owner; a block of new items travels as three
parallel arrays ($3 ids as UTF-8 bytes, $4 types, $5 bodies), so a block of any size is one
statement.
"""

from __future__ import annotations

from convostack.storage import postgres_responses as responses
from convostack.storage.base import Order
from convostack.storage.postgres_pages import list_sql

# The metadata filter is a JSON object that a row's metadata must contain (NULL: none).
# A stored metadata holding an escaped NUL cannot become jsonb: such a row never matches
# a filter, rather than failing the whole list (the CASE keeps the cast from running).
_METADATA = """$3::text IS NULL OR CASE
    WHEN strpos(convert_from(r.metadata, 'UTF8'), '\\u0000') > 0 THEN false
    ELSE convert_from(r.metadata, 'UTF8')::jsonb @> $3::jsonb END"""
_CONVERSATION_COLUMNS = "id, created_at, metadata"
LIST_CONVERSATIONS = {
    "asc": list_sql("conversations", _CONVERSATION_COLUMNS, _METADATA, "asc"),
    "desc": list_sql("conversations", _CONVERSATION_COLUMNS, _METADATA, "desc"),
}

GET_CONVERSATION = "SELECT id, created_at, metadata FROM conversations WHERE id = $1 AND owner = $2"

CREATE_CONVERSATION = (
    "INSERT INTO conversations (id, owner, created_at, metadata) VALUES ($1, $2, $3, $4)"
)

_NEW_ITEMS = (
    "unnest($3::bytea[], $4::text[], $5::bytea[]) WITH ORDINALITY AS n(id, type, body, ord)"
)

CREATE_WITH_ITEMS = f"""
WITH conversation AS (
    INSERT INTO conversations (id, owner, created_at, metadata, next_seq, live_items)
    VALUES ($1, $2, $6, $7, cardinality($3::bytea[]), cardinality($3::bytea[]))
)
INSERT INTO items (conversation_id, seq, id, type, created_at, body)
SELECT $1, n.ord - 1, n.id, n.type, $6, n.body FROM {_NEW_ITEMS}
"""

# The UPDATE row-locks the conversation until commit: concurrent appends queue on it, and
# each checks the limit ({limit}) against the count the one before it left.
_APPEND_CTES = f"""
WITH conversation AS (
    UPDATE conversations SET next_seq = next_seq + cardinality($3::bytea[]),
        live_items = live_items + cardinality($3::bytea[])
    WHERE id = $1 AND owner = $2{{limit}}
    RETURNING next_seq - cardinality($3::bytea[]) AS first
), appended AS (
    INSERT INTO items (conversation_id, seq, id, type, created_at, body)
    SELECT $1, conversation.first + n.ord - 1, n.id, n.type, $6, n.body
    FROM conversation, {_NEW_ITEMS}
)"""


# Appends with an item limit ($N, NULL for none) checked by the UPDATE itself.
def _limit(param: int) -> str:
    return (
        f"\n      AND (${param}::bigint IS NULL"
        f" OR live_items + cardinality($3::bytea[]) <= ${param})"
    )


# The last column of a limited append: `held`, the conversation's count when nothing was
# appended (NULL when the conversation is missing too). The count is read with a lock
# (FOR SHARE), so it is the one the UPDATE saw when it waited for a concurrent append:
# not the statement's older snapshot.
_HELD = """(
    SELECT live_items FROM conversations
    WHERE id = $1 AND owner = $2 AND NOT EXISTS (SELECT 1 FROM conversation) FOR SHARE
) AS held"""

# One row: `first` when the items were appended; else `held`, as above. $7 is the limit.
APPEND = (
    _APPEND_CTES.format(limit=_limit(7))
    + f"""
SELECT (SELECT first FROM conversation) AS first, {_HELD}"""
)

# A turn on a conversation: the append above and the response, in one statement; the
# response is only stored when the items were appended (else nothing is written). $15 is
# the item limit, checked inside the append as above (issue 12: a check when the turn
# started let concurrent turns pass the limit ten times over).
SAVE_TURN = f"""{_APPEND_CTES.format(limit=_limit(15))}, response AS (
    {responses.INSERT_SELECT.format(params=responses.TURN_PARAMS)}
    WHERE EXISTS (SELECT 1 FROM conversation)
    {responses.ON_CONFLICT}
)
SELECT (SELECT first FROM conversation) AS first, {_HELD}"""

UPDATE_METADATA = (
    "UPDATE conversations SET metadata = $3 WHERE id = $1 AND owner = $2 "
    "RETURNING id, created_at, metadata"
)

# Items go with it (ON DELETE CASCADE).
DELETE_CONVERSATION = "DELETE FROM conversations WHERE id = $1 AND owner = $2 RETURNING id"


def _list_items_sql(order: Order) -> str:
    # One row per item of the page, or one row of NULLs for an empty page; no row at all
    # when the conversation is missing. `cursor_found` is false for an unknown `after`.
    comparison, direction, start = (">", "ASC", -1) if order == "asc" else ("<", "DESC", 2**63 - 1)
    return f"""
SELECT ($3::bytea IS NULL OR after_item.seq IS NOT NULL) AS cursor_found, page.id, page.body
FROM conversations c
LEFT JOIN items after_item ON after_item.conversation_id = c.id AND after_item.id = $3
LEFT JOIN LATERAL (
    SELECT i.id, i.body FROM items i
    WHERE i.conversation_id = $1 AND i.body IS NOT NULL
      AND i.seq {comparison} CASE WHEN $3::bytea IS NULL THEN {start} ELSE after_item.seq END
    ORDER BY i.seq {direction} LIMIT $4
) page ON true
WHERE c.id = $1 AND c.owner = $2"""


LIST_ITEMS = {"asc": _list_items_sql("asc"), "desc": _list_items_sql("desc")}

# No row: the conversation is missing; a NULL body: the item is.
GET_ITEM = """
SELECT i.body FROM conversations c
LEFT JOIN items i ON i.conversation_id = c.id AND i.id = $3 AND i.body IS NOT NULL
WHERE c.id = $1 AND c.owner = $2"""

# Deleting an item leaves a tombstone (body NULL) so that cursors naming it still work.
# The conversation is locked first (as an append and a conversation delete lock it before
# any item), then its count lowered when an item was deleted.
DELETE_ITEM = """
WITH c AS (
    SELECT id, created_at, metadata FROM conversations WHERE id = $1 AND owner = $2
    FOR NO KEY UPDATE
), deleted AS (
    UPDATE items SET body = NULL
    WHERE conversation_id = (SELECT id FROM c) AND id = $3 AND body IS NOT NULL
    RETURNING 1
), counted AS (
    UPDATE conversations SET live_items = live_items - 1
    WHERE id = (SELECT id FROM c) AND EXISTS (SELECT 1 FROM deleted)
)
SELECT id, created_at, metadata, EXISTS (SELECT 1 FROM deleted) AS deleted FROM c"""

# One row per id of $1 found: the id, where the owner's newest live item with it is
# (conversation and seq), and its size (from the value's header: a TOASTed body is not
# read).
LOCATE_ITEMS = """
SELECT r.id, f.conversation_id, f.seq, octet_length(f.body) FROM unnest($1::bytea[]) AS r(id)
JOIN LATERAL (
    SELECT i.conversation_id, i.seq, i.body FROM items i
    JOIN conversations c ON c.id = i.conversation_id
    WHERE i.id = r.id AND c.owner = $2 AND i.body IS NOT NULL
    ORDER BY i.created_at DESC LIMIT 1
) f ON true"""

# The bodies of the items at ($1[n], $2[n]), still live.
ITEM_BODIES = """
SELECT i.conversation_id, i.seq, i.body FROM unnest($1::text[], $2::bigint[]) AS k(c, s)
JOIN items i ON i.conversation_id = k.c AND i.seq = k.s AND i.body IS NOT NULL"""

ALL_ITEMS = """
SELECT ARRAY(
    SELECT body FROM items WHERE conversation_id = $1 AND body IS NOT NULL ORDER BY seq
) FROM conversations WHERE id = $1 AND owner = $2"""

# One statement, one snapshot: the version (items ever appended, and deleted: the
# appended ones not live) and the live items from $3 on when $4 deletions are still all
# there are (else from 0).
HISTORY_SINCE = """
SELECT c.next_seq, c.next_seq - c.live_items, s.since, ARRAY(
    SELECT body FROM items
    WHERE conversation_id = $1 AND body IS NOT NULL AND seq >= s.since ORDER BY seq
) FROM conversations c
CROSS JOIN LATERAL (SELECT CASE WHEN c.next_seq - c.live_items = $4::bigint
                               AND c.next_seq >= $3::bigint THEN $3::bigint ELSE 0 END) s(since)
WHERE c.id = $1 AND c.owner = $2"""

ITEM_COUNT = "SELECT live_items FROM conversations WHERE id = $1 AND owner = $2"

EXISTING_IDS = "SELECT id FROM items WHERE conversation_id = $1 AND id = ANY($2::bytea[])"
