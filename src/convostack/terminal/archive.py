"""Conversations to and from JSONL, straight on the database (`convostack conversations
export|import`): one line per conversation, `{"id", "created_at", "metadata", "items"}`,
oldest conversation first and items in their order.

On the store rather than through the API, because an import keeps each conversation's
id (the API makes new ones) and its creation time; importing lines in file order keeps
the conversations' order too. Exporting what was imported gives the same lines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from convostack.storage.base import ConversationMissing, ConversationRow, NewItem, Store

PAGE = 100


async def rows(store: Store, owner: str) -> AsyncIterator[ConversationRow]:
    """Every conversation of the owner, oldest first."""
    after = None
    while True:
        page = await store.list_conversations(
            owner, after=after, limit=PAGE, order="asc", metadata={}
        )
        for row in page.rows:
            yield row
        if not page.has_more or not page.rows:
            return
        after = page.rows[-1].id


async def export_line(store: Store, owner: str, row: ConversationRow) -> bytes:
    """One conversation as a JSONL line (its items as stored, in order)."""
    items = await store.all_items(owner, row.id)
    # The stored item bytes go in as they are: no parse, no re-encoding.
    head = orjson.dumps({"id": row.id, "created_at": row.created_at, "metadata": row.metadata})
    return head[:-1] + b',"items":[' + b",".join(items) + b"]}\n"


async def export_one(store: Store, owner: str, conversation_id: str) -> bytes:
    """Raises ConversationMissing."""
    return await export_line(store, owner, await store.get_conversation(owner, conversation_id))


@dataclass
class ImportResult:
    imported: int = 0
    skipped: list[str] = field(default_factory=list)  # ids already in the database


class ArchiveError(Exception):
    """A line that is not a conversation; the message names the line."""


def _parse(number: int, line: bytes) -> tuple[ConversationRow, list[NewItem]]:
    try:
        data: Any = orjson.loads(line)
        row = ConversationRow(
            id=str(data["id"]), created_at=int(data["created_at"]), metadata=data["metadata"]
        )
        items = [
            NewItem(id=str(item["id"]), type=str(item["type"]), body=orjson.dumps(item))
            for item in data["items"]
        ]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ArchiveError(f"line {number}: not an exported conversation ({exc})") from None
    return row, items


async def import_lines(store: Store, owner: str, lines: Iterable[bytes]) -> ImportResult:
    """Create each conversation of the lines, in order, under its own id; one whose id
    is already there is skipped (and named), never merged."""
    result = ImportResult()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        row, items = _parse(number, line)
        try:
            await store.get_conversation(owner, row.id)
        except ConversationMissing:
            await store.create_conversation(owner, row, items)
            result.imported += 1
        else:
            result.skipped.append(row.id)
    return result
