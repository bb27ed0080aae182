"""SQLite store: the stdlib sqlite3 in WAL mode, used on the event loop's thread.

Reads run at once on the loop (a query or two on an index); writes queued in one turn of
the loop commit together, so allocating sequence numbers is a plain `UPDATE ...
RETURNING` inside the batch's transaction (storage/worker.py says how, and when a thread
takes over instead: long reads, a database locked by another process, checkpoints).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import orjson

from convostack.storage import migrations
from convostack.storage import sqlite_pages as pages
from convostack.storage import sqlite_responses as responses
from convostack.storage import sqlite_usage as usage
from convostack.storage.base import (
    ConversationFull,
    ConversationMissing,
    ConversationPage,
    ConversationRow,
    CursorMissing,
    DuplicateItemId,
    HistoryRead,
    ItemMissing,
    ItemPage,
    NewItem,
    Order,
    ResponsePage,
    StoredResponse,
    StoreUnavailable,
    Turn,
    check_copies,
)
from convostack.storage.quotas import Quotas
from convostack.storage.sqlite_background import SqliteBackground
from convostack.storage.worker import (
    WRITER_WAIT_SECONDS,
    Checkpointer,
    ConnectionWorker,
    LoopConnection,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a thread's connection waits for a lock: as long as the writer thread does.
BUSY_TIMEOUT_MS = int(WRITER_WAIT_SECONDS * 1000)
# A history at most this long is read on the loop; a longer one in the reader thread
# (1,000 items take about a millisecond to read).
INLINE_HISTORY_ITEMS = 1000


def _row_to_conversation(row: tuple[str, int, str]) -> ConversationRow:
    return ConversationRow(id=row[0], created_at=row[1], metadata=orjson.loads(row[2]))


def _conversation(conn: sqlite3.Connection, owner: str, conversation_id: str) -> ConversationRow:
    row = conn.execute(
        "SELECT id, created_at, metadata FROM conversations WHERE id = ? AND owner = ?",
        (conversation_id, owner),
    ).fetchone()
    if row is None:
        raise ConversationMissing(conversation_id)
    return _row_to_conversation(row)


def _check_owned(conn: sqlite3.Connection, owner: str, conversation_id: str) -> None:
    """That the conversation exists and is the owner's (its metadata not read)."""
    row = conn.execute(
        "SELECT 1 FROM conversations WHERE id = ? AND owner = ?", (conversation_id, owner)
    ).fetchone()
    if row is None:
        raise ConversationMissing(conversation_id)


def _size(conn: sqlite3.Connection, owner: str, conversation_id: str) -> tuple[int, int]:
    """That the conversation exists and is the owner's: how many items it ever had (its
    highest seq plus one: a deleted item leaves a tombstone), and how many of them were
    deleted."""
    row = conn.execute(
        "SELECT (SELECT max(seq) FROM items WHERE conversation_id = ?1), deleted_items "
        "FROM conversations WHERE id = ?1 AND owner = ?2",
        (conversation_id, owner),
    ).fetchone()
    if row is None:
        raise ConversationMissing(conversation_id)
    return (0 if row[0] is None else row[0] + 1), row[1]


def _body(row: tuple[bytes] | None, item_id: str) -> bytes:
    if row is None:
        raise ItemMissing(item_id)
    return row[0]


def _append(
    conn: sqlite3.Connection,
    owner: str,
    conversation_id: str,
    items: Sequence[NewItem],
    max_items: int | None = None,
    quotas: Quotas | None = None,
) -> None:
    """Insert after the last item. Run inside the batch's transaction, which holds
    SQLite's write lock: no other append can come between the read and the insert."""
    first, deleted = _size(conn, owner, conversation_id)
    if max_items is not None and first - deleted + len(items) > max_items:
        raise ConversationFull(conversation_id, first - deleted)
    seen: set[str] = set()
    for item in items:
        if item.id in seen or (not item.fresh and _has_item(conn, conversation_id, item.id)):
            raise DuplicateItemId(item.id)
        seen.add(item.id)
    if quotas is not None:
        usage.use(conn, quotas, owner, (0, len(items), sum(len(i.body) for i in items)))
    now = int(time.time())
    conn.executemany(
        "INSERT INTO items (conversation_id, seq, id, type, created_at, body) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (conversation_id, first + n, item.id, item.type, now, item.body)
            for n, item in enumerate(items)
        ],
    )


# Ids (or rowids) per query of _find_items (one bound parameter each; SQLite allows
# 32,766).
FIND_BATCH = 500


def _find_items(
    conn: sqlite3.Connection, owner: str, item_ids: Sequence[str], max_bytes: int | None
) -> dict[str, bytes]:
    """The newest live item of the owner's with each id: first where each is and its
    size (a blob's length is in its header), then, if the sizes allow, the bodies; one
    query per FIND_BATCH ids each. The ids are bound parameters, not a JSON array:
    json_each cuts a string at a NUL."""
    located: dict[str, tuple[int, int]] = {}  # id -> (rowid, length)
    for batch in _batches(list(dict.fromkeys(item_ids))):
        rows = conn.execute(
            f"WITH r(value) AS (VALUES {', '.join(['(?)'] * len(batch))}) "
            "SELECT value, at, (SELECT length(body) FROM items WHERE rowid = at) FROM ("
            "SELECT r.value AS value, (SELECT i.rowid FROM items i "
            "JOIN conversations c ON c.id = i.conversation_id "
            "WHERE i.id = r.value AND c.owner = ? AND i.body IS NOT NULL "
            "ORDER BY i.created_at DESC LIMIT 1) AS at FROM r) WHERE at IS NOT NULL",
            (*batch, owner),
        ).fetchall()
        located.update((item_id, (at, size)) for item_id, at, size in rows)
    check_copies(item_ids, {i: size for i, (_, size) in located.items()}, max_bytes)
    bodies: dict[int, bytes] = {}
    for rowids in _batches([at for at, _ in located.values()]):
        bodies.update(conn.execute(
            f"SELECT rowid, body FROM items WHERE rowid IN ({', '.join(['?'] * len(rowids))})",
            rowids,
        ).fetchall())  # fmt: skip
    return {item_id: bodies[at] for item_id, (at, _) in located.items()}


def _batches(values: list[T]) -> list[list[T]]:
    return [values[start : start + FIND_BATCH] for start in range(0, len(values), FIND_BATCH)]


def _has_item(conn: sqlite3.Connection, conversation_id: str, item_id: str) -> bool:
    """Whether the conversation ever held the id (a deleted item's included)."""
    row = conn.execute(
        "SELECT 1 FROM items WHERE id = ? AND conversation_id = ?", (item_id, conversation_id)
    ).fetchone()
    return row is not None


class SqliteStore(SqliteBackground):
    def __init__(self, path: Path, quotas: Quotas | None = None):
        self.path = path
        # Usage is only kept with quotas on (storage/quotas.py says why).
        self._quotas = quotas if quotas is not None and quotas.enabled else None
        self._writer = ConnectionWorker(
            "convostack-sqlite-writer", self._connect_writer, writer=True
        )
        self._reader = ConnectionWorker("convostack-sqlite-reader", self._connect, writer=False)
        self._checkpointer = Checkpointer("convostack-sqlite-checkpoint", self._connect, str(path))
        self._loop = LoopConnection(
            self._connect_loop, self._writer, self._reader, self._checkpointer, f"{path}-wal"
        )

    def _connect(self, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        conn.execute("PRAGMA foreign_keys = ON")
        # NORMAL in WAL mode: a commit survives a crash of the process, and the database
        # is never corrupted; only a power loss can drop the last few commits.
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _connect_writer(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        conn.execute("PRAGMA journal_mode = WAL")
        _migrate(conn)
        if self._quotas is not None:
            usage.recount(conn)
        # From now on the writer thread waits for the lock itself (worker.py says why).
        conn.execute("PRAGMA busy_timeout = 0")
        return conn

    def _connect_loop(self) -> sqlite3.Connection:
        # The loop never blocks on a lock (worker.LoopConnection retries a busy write
        # briefly, then hands it to a thread), and never checkpoints (the
        # checkpointer's thread does).
        conn = self._connect(busy_timeout_ms=0)
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        return conn

    async def start(self) -> None:
        self._writer.start()  # creates the database and applies migrations
        self._reader.start()
        self._checkpointer.start()
        self._loop.open()
        log.info("sqlite store ready at %s", self.path)

    async def close(self) -> None:
        self._loop.close()
        await self._checkpointer.stop()
        await self._writer.stop()
        await self._reader.stop()
        self._checkpointer.close_file()

    async def _write(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._loop.write(operation)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def _read(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._loop.read(operation)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def _write_in_thread(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """A write too big for the loop's thread (a file's bytes, a file's chunks)."""
        try:
            return await self._writer.run(operation)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def _read_in_thread(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._reader.run(operation)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def create_conversation(
        self, owner: str, conversation: ConversationRow, items: Sequence[NewItem]
    ) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO conversations (id, owner, created_at, metadata, pos) "
                "VALUES (?1, ?2, ?3, ?4, "
                "(SELECT coalesce(max(pos), 0) + 1 FROM conversations WHERE owner = ?2))",
                (
                    conversation.id,
                    owner,
                    conversation.created_at,
                    orjson.dumps(conversation.metadata),
                ),
            )
            if self._quotas is not None:
                usage.use(conn, self._quotas, owner, (1, 0, 0))
            if items:
                _append(conn, owner, conversation.id, items, quotas=self._quotas)

        await self._write(op)

    async def list_conversations(
        self,
        owner: str,
        *,
        after: str | None,
        limit: int,
        order: Order,
        metadata: dict[str, str],
    ) -> ConversationPage:
        # One EXISTS per key: json_each matches keys exactly, whatever characters they
        # hold (a JSON path would need quoting). CAST: the column holds orjson's bytes.
        where = (
            " AND EXISTS (SELECT 1 FROM json_each(CAST(metadata AS TEXT))"
            " WHERE key = ? AND value = ?)"
        )
        params = tuple(part for pair in metadata.items() for part in pair)

        def op(conn: sqlite3.Connection) -> ConversationPage:
            rows, has_more = pages.page(
                conn, "conversations", "id, created_at, metadata", owner, after=after,
                limit=limit, order=order, where=where * len(metadata), params=params,
            )  # fmt: skip
            return ConversationPage([_row_to_conversation(r) for r in rows], has_more)

        return await self._read(op)

    async def get_conversation(self, owner: str, conversation_id: str) -> ConversationRow:
        return await self._read(lambda conn: _conversation(conn, owner, conversation_id))

    async def update_metadata(
        self, owner: str, conversation_id: str, metadata: dict[str, str]
    ) -> ConversationRow:
        def op(conn: sqlite3.Connection) -> ConversationRow:
            row = conn.execute(
                "UPDATE conversations SET metadata = ? WHERE id = ? AND owner = ? "
                "RETURNING id, created_at, metadata",
                (orjson.dumps(metadata), conversation_id, owner),
            ).fetchone()
            if row is None:
                raise ConversationMissing(conversation_id)
            return _row_to_conversation(row)

        return await self._write(op)

    async def delete_conversation(self, owner: str, conversation_id: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            deleted = conn.execute(
                "DELETE FROM conversations WHERE id = ? AND owner = ?", (conversation_id, owner)
            ).rowcount
            if not deleted:
                raise ConversationMissing(conversation_id)
            if self._quotas is not None:
                count, size = usage.live(conn, conversation_id)
                usage.use(conn, self._quotas, owner, (-1, -count, -size))
            conn.execute("DELETE FROM items WHERE conversation_id = ?", (conversation_id,))

        await self._write(op)

    async def append_items(
        self,
        owner: str,
        conversation_id: str,
        items: Sequence[NewItem],
        *,
        max_items: int | None = None,
    ) -> None:
        await self._write(
            lambda conn: _append(conn, owner, conversation_id, items, max_items, self._quotas)
        )

    async def list_items(
        self, owner: str, conversation_id: str, *, after: str | None, limit: int, order: Order
    ) -> ItemPage:
        def op(conn: sqlite3.Connection) -> ItemPage:
            _check_owned(conn, owner, conversation_id)
            if after is None:
                bound = -1 if order == "asc" else 1 << 62
            else:
                row = conn.execute(
                    "SELECT seq FROM items WHERE conversation_id = ? AND id = ?",
                    (conversation_id, after),
                ).fetchone()
                if row is None:
                    raise CursorMissing(after)
                bound = row[0]
            comparison, direction = (">", "ASC") if order == "asc" else ("<", "DESC")
            rows = conn.execute(
                f"SELECT id, body FROM items WHERE conversation_id = ? AND seq {comparison} ? "
                f"AND body IS NOT NULL ORDER BY seq {direction} LIMIT ?",
                (conversation_id, bound, limit + 1),
            ).fetchall()
            page = rows[:limit]
            return ItemPage(
                ids=[r[0] for r in page], bodies=[r[1] for r in page], has_more=len(rows) > limit
            )

        return await self._read(op)

    async def get_item(self, owner: str, conversation_id: str, item_id: str) -> bytes:
        def op(conn: sqlite3.Connection) -> bytes:
            _check_owned(conn, owner, conversation_id)
            row = conn.execute(
                "SELECT body FROM items WHERE conversation_id = ? AND id = ? AND body IS NOT NULL",
                (conversation_id, item_id),
            ).fetchone()
            return _body(row, item_id)

        return await self._read(op)

    async def delete_item(self, owner: str, conversation_id: str, item_id: str) -> ConversationRow:
        def op(conn: sqlite3.Connection) -> ConversationRow:
            conversation = _conversation(conn, owner, conversation_id)
            if self._quotas is not None:
                size = usage.item_bytes(conn, conversation_id, item_id)
                usage.use(conn, self._quotas, owner, (0, -1 if size else 0, -size))
            changed = conn.execute(
                "UPDATE items SET body = NULL WHERE conversation_id = ? AND id = ? "
                "AND body IS NOT NULL",
                (conversation_id, item_id),
            ).rowcount
            if not changed:
                raise ItemMissing(item_id)
            conn.execute(
                "UPDATE conversations SET deleted_items = deleted_items + 1 WHERE id = ?",
                (conversation_id,),
            )
            return conversation

        return await self._write(op)

    async def find_items(
        self, owner: str, item_ids: Sequence[str], *, max_bytes: int | None = None
    ) -> dict[str, bytes]:
        def op(conn: sqlite3.Connection) -> dict[str, bytes]:
            return _find_items(conn, owner, item_ids, max_bytes)

        # Many references may copy many big bodies: read them in the reader thread.
        return await (self._read(op) if len(item_ids) <= 1 else self._read_in_thread(op))

    async def all_items(self, owner: str, conversation_id: str) -> list[bytes]:
        def length(conn: sqlite3.Connection) -> int:
            return _size(conn, owner, conversation_id)[0]

        def items(conn: sqlite3.Connection) -> list[bytes]:
            rows = conn.execute(
                "SELECT body FROM items WHERE conversation_id = ? AND body IS NOT NULL "
                "ORDER BY seq",
                (conversation_id,),
            ).fetchall()
            return [r[0] for r in rows]

        def whole(conn: sqlite3.Connection) -> list[bytes]:
            length(conn)
            return items(conn)

        if await self._read(length) <= INLINE_HISTORY_ITEMS:
            return await self._read(items)
        return await self._read_in_thread(whole)

    async def history_since(
        self, owner: str, conversation_id: str, next_seq: int, deleted: int
    ) -> HistoryRead:
        # Two statements, each its own snapshot: the version first, and the items bounded
        # by it, so an append from another process between them is not read, and a delete
        # leaves the older version (which the next read will not match).
        ever, gone = await self._read(lambda conn: _size(conn, owner, conversation_id))
        since = next_seq if gone == deleted and next_seq <= ever else 0

        def items(conn: sqlite3.Connection) -> list[bytes]:
            rows = conn.execute(
                "SELECT body FROM items WHERE conversation_id = ? AND seq >= ? AND seq < ? "
                "AND body IS NOT NULL ORDER BY seq",
                (conversation_id, since, ever),
            ).fetchall()
            return [r[0] for r in rows]

        inline = ever - since <= INLINE_HISTORY_ITEMS
        bodies = await (self._read(items) if inline else self._read_in_thread(items))
        return HistoryRead(ever, gone, since, bodies)

    async def save_turn(self, owner: str, turn: Turn, *, max_items: int | None = None) -> None:
        def op(conn: sqlite3.Connection) -> None:
            if turn.conversation_id is not None:
                _append(conn, owner, turn.conversation_id, turn.items, max_items, self._quotas)
            if turn.response is not None:
                responses.insert_response(conn, owner, turn.response)

        await self._write(op)

    async def get_response(self, owner: str, response_id: str) -> StoredResponse:
        return await self._read(lambda conn: responses.get_response(conn, owner, response_id))

    async def response_chain(self, owner: str, response_id: str) -> list[StoredResponse]:
        return await self._read_in_thread(
            lambda conn: responses.response_chain(conn, owner, response_id)
        )

    async def responses_version(self, owner: str, response_ids: Sequence[str]) -> tuple[int, int]:
        def op(conn: sqlite3.Connection) -> tuple[int, int]:
            return responses.responses_version(conn, owner, response_ids)

        long = len(response_ids) > INLINE_HISTORY_ITEMS
        return await (self._read_in_thread(op) if long else self._read(op))

    async def delete_response(self, owner: str, response_id: str) -> None:
        await self._write(lambda conn: responses.delete_response(conn, owner, response_id))

    async def list_responses(
        self, owner: str, *, after: str | None, limit: int, order: Order, model: str | None
    ) -> ResponsePage:
        return await self._read(
            lambda conn: responses.list_responses(
                conn, owner, after=after, limit=limit, order=order, model=model
            )
        )


def _migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations not yet applied, each in its own transaction. Several
    processes may start on one file at once (`serve --workers`): each migration is
    looked for again under the write lock, so exactly one of them applies it."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
    )
    for migration in migrations.load("sqlite"):
        conn.execute("BEGIN IMMEDIATE")
        try:
            applied = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
            ).fetchone()
            if applied is None:
                log.info("applying sqlite migration %04d_%s", migration.version, migration.name)
                for statement in _statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, int(time.time())),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _statements(sql: str) -> list[str]:
    # Migrations are plain DDL; complete_statement tells where each one ends.
    out, current = [], ""
    for line in sql.splitlines(keepends=True):
        if not current and line.strip().startswith("--"):
            continue
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    if current.strip():
        out.append(current.strip())
    return out
