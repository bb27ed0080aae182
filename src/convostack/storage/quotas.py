"""Quotas per principal: how many conversations and items, and how many bytes of items,
one owner may store (issue 12: one key could fill the disk).

Usage is kept in `principal_usage`, one row per owner, by every write of a store opened
with quotas, in the same transaction as the write, so the check is exact under
concurrency: SQLite's write lock, or on PostgreSQL the usage row's lock, held until the
write commits (a principal's writes queue on it; other principals' do not). A store
without quotas does not touch the table (no cost on the hot paths), so its counts go
stale: a store with quotas counts everything again when it starts. Every process sharing
a database must therefore run with quotas on, or all with quotas off.
"""

from __future__ import annotations

from dataclasses import dataclass

from convostack.storage.base import StoreError


@dataclass(frozen=True, slots=True)
class Quotas:
    conversations: int | None = None
    items: int | None = None
    bytes: int | None = None

    @property
    def enabled(self) -> bool:
        return (self.conversations, self.items, self.bytes) != (None, None, None)

    def check(self, used: tuple[int, int, int], adding: tuple[int, int, int]) -> None:
        """Raises QuotaExceeded when `used` (counts after the write) passes a quota the
        write adds to."""
        limits = (self.conversations, self.items, self.bytes)
        for what, now, more, limit in zip(KINDS, used, adding, limits, strict=True):
            if more > 0 and limit is not None and now > limit:
                raise QuotaExceeded(what, limit, now - more, more)


KINDS = ("conversations", "items", "bytes")


class QuotaExceeded(StoreError):
    """A write would take the owner past a quota: `what` (one of KINDS), its `limit`,
    what the owner `held` before, and what the write was `adding`."""

    def __init__(self, what: str, limit: int, held: int, adding: int):
        super().__init__(what)
        self.what = what
        self.limit = limit
        self.held = held
        self.adding = adding


# Every owner's usage counted from the tables (bodies' lengths read from their headers,
# not their bytes); the same SQL on both backends but for the length function.
RECOUNT = """
INSERT INTO principal_usage (owner, conversations, items, bytes)
SELECT c.owner, count(*), coalesce(sum(n.live), 0), coalesce(sum(n.size), 0)
FROM conversations c LEFT JOIN (
    SELECT conversation_id, count(*) AS live, sum({length}(body)) AS size
    FROM items WHERE body IS NOT NULL GROUP BY conversation_id
) n ON n.conversation_id = c.id
GROUP BY c.owner"""
