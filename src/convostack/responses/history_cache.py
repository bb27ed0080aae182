"""A conversation's history, kept between turns so that a turn pays only for what is new.

Items are only ever appended to a conversation or deleted from it, so two numbers name a
state of its history: how many items were ever appended (`next_seq`) and how many of them
were deleted. A turn reads those with the items appended since the entry it holds
(`Store.history_since`: one indexed read); when no item was deleted meanwhile it parses
only the new items and carries the entry's chat conversion on (`context.Conversion`),
else it reads the whole history again. The cache is never the truth: every turn checks it
against the database, so another replica's append or delete is seen, and an entry that
does not match is rebuilt from the items.

A `previous_response_id` chain is kept the same way, by the response it ends with: a turn
that continues a kept response, or the response after a kept one, checks with one read
that every response of the chain is still there as it was (`Store.responses_version`:
how many, and their bodies' total size) and adds only the newest response's items.

Bounded by `history_cache_bytes`, least recently used first out, counted by an estimate
of what the parsed items and their messages take in memory.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from convostack.limits import DEFAULT_HISTORY_CACHE_BYTES
from convostack.responses.context import Conversion

Item = dict[str, Any]
# What one item takes parsed, with its chat message, against its stored JSON: measured
# on short messages (about 150 bytes of JSON, 1.2 KiB as dicts and a message).
_OBJECT_FACTOR = 3
_OBJECT_OVERHEAD = 800


def footprint(bodies: list[bytes]) -> int:
    """The memory an entry's items are counted for."""
    return sum(len(b) for b in bodies) * _OBJECT_FACTOR + len(bodies) * _OBJECT_OVERHEAD


@dataclass(slots=True)
class Entry:
    next_seq: int
    deleted: int
    items: list[Item]  # the live items, oldest first, parsed (sealed reasoning opened)
    size: int  # footprint()
    conversion: Conversion | None = None  # of items[: conversion.items], not finished
    # A previous_response_id chain's: its responses, oldest first, and their bodies' size.
    chain: tuple[str, ...] = ()
    chain_bytes: int = 0


class HistoryCache:
    def __init__(self, max_bytes: int = DEFAULT_HISTORY_CACHE_BYTES):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str], Entry] = OrderedDict()
        self._bytes = 0

    def get(self, owner: str, conversation_id: str) -> Entry | None:
        key = (owner, conversation_id)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, owner: str, conversation_id: str, entry: Entry) -> None:
        self.discard(owner, conversation_id)
        if entry.size > self.max_bytes:
            return
        self._entries[(owner, conversation_id)] = entry
        self._bytes += entry.size
        while self._bytes > self.max_bytes:
            _, oldest = self._entries.popitem(last=False)
            self._bytes -= oldest.size

    def discard(self, owner: str, conversation_id: str) -> None:
        old = self._entries.pop((owner, conversation_id), None)
        if old is not None:
            self._bytes -= old.size

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)
