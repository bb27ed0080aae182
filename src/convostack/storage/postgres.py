"""PostgreSQL store: pooled asyncpg connections, one statement (one round trip) per call.

Every call is a single SQL statement, so it is atomic without an explicit transaction
(BEGIN and COMMIT would be two more round trips): appending allocates the sequence
numbers and inserts the items in one statement, whose `UPDATE conversations SET next_seq
= next_seq + n ... RETURNING` row-locks the conversation until the statement commits;
a concurrent append on the same conversation waits for that lock and then reads the
new `next_seq`, so blocks never interleave and no seq is used twice (the primary key on
`(conversation_id, seq)` would refuse it anyway). A turn's items and its stored response
are written by one statement too (the SQL is in postgres_items.py and
postgres_responses.py). Statements are prepared once per connection and cached by
asyncpg. Replicas share nothing but the database.

Item and response bodies are `bytea`, not `jsonb`: routes splice the stored JSON bytes
into responses unparsed, and jsonb would parse every body on the way in and re-serialise
it on the way out (reordering keys, so the bytes would differ from what the SQLite store
returns and from what the create call answered). Nothing queries inside a body.

Connections come from a small pool of our own (postgres_pool.py, cheaper per query than
asyncpg's). Pool settings come from the URL's query string (see PostgresSettings); every other
query parameter goes to asyncpg (`sslmode`, or a server setting like `search_path`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from convostack.storage import migrations, redacted_url
from convostack.storage import postgres_items as sql
from convostack.storage import postgres_responses as responses
from convostack.storage import postgres_usage as usage
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
    ResponseMissing,
    ResponsePage,
    StoredResponse,
    StoreUnavailable,
    Turn,
    check_copies,
)
from convostack.storage.postgres_background import PostgresBackground
from convostack.storage.postgres_pool import Pool
from convostack.storage.quotas import Quotas

log = logging.getLogger(__name__)

# The key of the advisory lock held while migrations run, so that replicas starting
# together apply each migration once. Any constant works; this spells "convosta".
MIGRATION_LOCK = 0x636F6E766F737461

# How many times an append is tried when items of its conversation are deleted between
# its limit check and its reading of the count (see append_items).
APPEND_TRIES = 3

# Errors that mean "the database cannot serve this now; retry later": refused or lost
# connections (OSError, SQLSTATE class 08), a server shutting down or a statement
# cancelled (57), too many connections or a full disk (53), a deadlock or serialisation
# failure (40), and waiting too long for a pooled connection (TimeoutError).
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
)


class PostgresSettings(BaseModel):
    """Connection-pool settings, given as query parameters of the database URL, e.g.
    `postgresql://user:password@db:5432/convostack?pool_max_size=20`."""

    model_config = ConfigDict(extra="forbid")

    pool_min_size: int = Field(
        2, ge=0, description="Connections each replica opens at start and keeps open."
    )
    pool_max_size: int = Field(
        10,
        ge=1,
        description="Most connections one replica holds at once; mind the server's "
        "max_connections across all replicas.",
    )
    pool_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds to wait for a connection (new or pooled) before answering 503.",
    )
    statement_cache_size: int = Field(
        100,
        ge=0,
        description="Prepared statements kept per connection; 0 behind PgBouncer in "
        "transaction mode.",
    )

    @classmethod
    def split_url(cls, url: str) -> tuple[str, PostgresSettings]:
        """The URL for asyncpg (our parameters removed) and the pool settings from it."""
        parts = urlsplit(url)
        ours = {}
        rest = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in cls.model_fields:
                ours[key] = value
            else:
                rest.append((key, value))
        try:
            settings = cls.model_validate(ours)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ValueError(
                f"Invalid PostgreSQL pool setting in the database URL: {problems}"
            ) from None
        if settings.pool_min_size > settings.pool_max_size:
            raise ValueError(
                "Invalid PostgreSQL pool setting in the database URL: pool_min_size "
                f"({settings.pool_min_size}) is above pool_max_size ({settings.pool_max_size})."
            )
        return urlunsplit(parts._replace(query=urlencode(rest))), settings


def _conversation(row: Any) -> ConversationRow:
    return ConversationRow(id=row[0], created_at=row[1], metadata=orjson.loads(row[2]))


def _key(item_id: str) -> bytes:
    """An item id as stored: its UTF-8 bytes (see the items table)."""
    return item_id.encode()


def _matchable(*keys: object) -> bool:
    """False when a text key holds a NUL character: PostgreSQL text cannot, so no stored
    row has that key and a lookup by it finds nothing (without asking the database)."""
    return not any(isinstance(key, str) and "\x00" in key for key in keys)


def _item_args(items: Sequence[NewItem]) -> tuple[list[bytes], list[str], list[bytes]]:
    return [_key(i.id) for i in items], [i.type for i in items], [i.body for i in items]


def _first_duplicate(items: Sequence[NewItem], existing: set[str]) -> str:
    seen: set[str] = set()
    for item in items:
        if item.id in existing or item.id in seen:
            return item.id
        seen.add(item.id)
    return items[0].id


def _appended(row: Any) -> bool:
    """Whether an append statement's row says the items were appended."""
    return row is not None and row[0] is not None


def _is_duplicate_item(exc: asyncpg.UniqueViolationError) -> bool:
    return getattr(exc, "constraint_name", None) == "items_conversation_id"


class _Borrowed:
    """`async with` a connection of the pool: a class, not a generator, as it is
    entered on every query."""

    __slots__ = ("_conn", "_pool")

    def __init__(self, pool: Pool | None):
        if pool is None:
            raise StoreUnavailable("the PostgreSQL store is not started")
        self._pool = pool
        self._conn: Any = None

    async def __aenter__(self) -> Any:
        try:
            self._conn = await self._pool.acquire()
        except UNAVAILABLE as exc:
            raise StoreUnavailable(f"PostgreSQL unavailable: {exc}") from exc
        return self._conn

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: object
    ) -> None:
        self._pool.release(self._conn, error)
        if isinstance(error, UNAVAILABLE):
            raise StoreUnavailable(f"PostgreSQL unavailable: {error}") from error


class PostgresStore(PostgresBackground):
    def __init__(
        self, url: str, settings: PostgresSettings | None = None, quotas: Quotas | None = None
    ):
        if settings is None:
            url, settings = PostgresSettings.split_url(url)
        self._url = url
        self.settings = settings
        # Usage is only kept with quotas on (storage/quotas.py says why).
        self._quotas = quotas if quotas is not None and quotas.enabled else None
        self._pool: Pool | None = None

    async def start(self) -> None:
        s = self.settings
        try:
            conn = await self._connect()
            try:
                await _migrate(conn, recount=self._quotas is not None)
            finally:
                await conn.close()
            pool = Pool(
                self._connect,
                min_size=s.pool_min_size,
                max_size=s.pool_max_size,
                timeout=s.pool_timeout,
            )
            await pool.start()
        except UNAVAILABLE as exc:
            raise StoreUnavailable(
                f"cannot reach PostgreSQL at {redacted_url(self._url)}: {exc}"
            ) from exc
        self._pool = pool
        log.info("postgres store ready at %s", redacted_url(self._url))

    async def _connect(self) -> Any:
        s = self.settings
        return await asyncpg.connect(
            self._url, timeout=s.pool_timeout, statement_cache_size=s.statement_cache_size
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _connection(self) -> _Borrowed:
        """A pooled connection, as `async with`; losing the database on the way becomes
        StoreUnavailable."""
        return _Borrowed(self._pool)

    async def _execute(self, statement: str, *args: object) -> None:
        async with self._connection() as conn:
            await conn.execute(statement, *args)

    async def _fetchrow(self, statement: str, *args: object) -> Any:
        """The first row of a statement that looks rows up by its text arguments; None,
        without a query, when one of them cannot be a stored key."""
        if not _matchable(*args):
            return None
        async with self._connection() as conn:
            return await conn.fetchrow(statement, *args)

    async def _fetch(self, statement: str, *args: object) -> list[Any]:
        """Every row of a lookup, as _fetchrow."""
        if not _matchable(*args):
            return []
        async with self._connection() as conn:
            rows: list[Any] = await conn.fetch(statement, *args)
            return rows

    async def _write_items(
        self,
        statement: str,
        conversation_id: str,
        items: Sequence[NewItem],
        *args: object,
        owner: str = "",
        conversations: int = 0,
        landed: Callable[[Any], bool] = lambda row: True,
    ) -> Any:
        """Runs a statement that inserts `items` into the conversation ($1, and the items
        as $3-$5); a repeated id becomes DuplicateItemId, with nothing written. None,
        without a query, when the conversation id cannot be a stored one. With quotas,
        the owner's usage grows by the items and `conversations` in the same transaction
        (not when `landed` says the statement wrote nothing)."""
        if not _matchable(conversation_id):
            return None
        async with self._connection() as conn:
            try:
                if self._quotas is None:
                    return await conn.fetchrow(statement, *args)
                adding = (conversations, len(items), sum(len(i.body) for i in items))
                return await usage.write(conn, self._quotas, owner, adding, statement, args, landed)
            except asyncpg.UniqueViolationError as exc:
                if not _is_duplicate_item(exc):
                    raise
                rows = await conn.fetch(
                    sql.EXISTING_IDS, conversation_id, [_key(i.id) for i in items]
                )
            raise DuplicateItemId(_first_duplicate(items, {r[0].decode() for r in rows}))

    async def create_conversation(
        self, owner: str, conversation: ConversationRow, items: Sequence[NewItem]
    ) -> None:
        metadata = orjson.dumps(conversation.metadata)
        if not items and self._quotas is not None:
            async with self._connection() as conn, conn.transaction():
                self._quotas.check(tuple(await conn.fetchrow(usage.USE, owner, 1, 0, 0)), (1, 0, 0))
                await conn.execute(
                    sql.CREATE_CONVERSATION, conversation.id, owner, conversation.created_at,
                    metadata,
                )  # fmt: skip
            return
        if not items:
            await self._execute(
                sql.CREATE_CONVERSATION, conversation.id, owner, conversation.created_at, metadata
            )
            return
        await self._write_items(
            sql.CREATE_WITH_ITEMS,
            conversation.id,
            items,
            conversation.id,
            owner,
            *_item_args(items),
            conversation.created_at,
            metadata,
            owner=owner,
            conversations=1,
        )

    async def list_conversations(
        self,
        owner: str,
        *,
        after: str | None,
        limit: int,
        order: Order,
        metadata: dict[str, str],
    ) -> ConversationPage:
        if not _matchable(after):
            raise CursorMissing(after or "")
        if not _matchable(*metadata, *metadata.values()):
            return ConversationPage([], False)  # no stored key or value holds a NUL
        wanted = orjson.dumps(metadata).decode() if metadata else None
        rows = await self._fetch(sql.LIST_CONVERSATIONS[order], owner, after, wanted, limit + 1)
        if not rows or not rows[0][0]:
            raise CursorMissing(after or "")
        if rows[0][1] is None:
            return ConversationPage([], False)
        page = rows[:limit]
        return ConversationPage([_conversation(r[1:]) for r in page], len(rows) > limit)

    async def get_conversation(self, owner: str, conversation_id: str) -> ConversationRow:
        row = await self._fetchrow(sql.GET_CONVERSATION, conversation_id, owner)
        if row is None:
            raise ConversationMissing(conversation_id)
        return _conversation(row)

    async def update_metadata(
        self, owner: str, conversation_id: str, metadata: dict[str, str]
    ) -> ConversationRow:
        row = await self._fetchrow(
            sql.UPDATE_METADATA, conversation_id, owner, orjson.dumps(metadata)
        )
        if row is None:
            raise ConversationMissing(conversation_id)
        return _conversation(row)

    async def delete_conversation(self, owner: str, conversation_id: str) -> None:
        if self._quotas is not None and _matchable(conversation_id):
            async with self._connection() as conn, conn.transaction():
                await conn.execute(usage.LOCK, owner)
                live = await conn.fetchrow(usage.LIVE, conversation_id, owner)
                if live is None:
                    raise ConversationMissing(conversation_id)
                await conn.execute(sql.DELETE_CONVERSATION, conversation_id, owner)
                await conn.execute(usage.USE, owner, -1, -live[0], -live[1])
            return
        if await self._fetchrow(sql.DELETE_CONVERSATION, conversation_id, owner) is None:
            raise ConversationMissing(conversation_id)

    async def append_items(
        self,
        owner: str,
        conversation_id: str,
        items: Sequence[NewItem],
        *,
        max_items: int | None = None,
    ) -> None:
        await self._append_limited(
            sql.APPEND, owner, conversation_id, items, max_items, int(time.time()), max_items
        )

    async def _append_limited(
        self,
        statement: str,
        owner: str,
        conversation_id: str,
        items: Sequence[NewItem],
        max_items: int | None,
        *args: object,
    ) -> None:
        """Runs an append whose statement checks the limit itself (APPEND, SAVE_TURN),
        under the conversation's row lock, so concurrent appends never pass it. When it
        appends nothing and the count it read would have let it (items deleted
        meanwhile), it is tried again."""
        for _ in range(APPEND_TRIES):
            row = await self._write_items(
                statement,
                conversation_id,
                items,
                conversation_id,
                owner,
                *_item_args(items),
                *args,
                owner=owner,
                landed=_appended,
            )
            if row is None or (row[0] is None and row[1] is None):
                raise ConversationMissing(conversation_id)
            if row[0] is not None:
                return
            held: int = row[1]
            if max_items is not None and held + len(items) > max_items:
                raise ConversationFull(conversation_id, held)
        raise StoreUnavailable(f"conversation {conversation_id} changed under every append")

    async def list_items(
        self, owner: str, conversation_id: str, *, after: str | None, limit: int, order: Order
    ) -> ItemPage:
        cursor = None if after is None else _key(after)
        rows = await self._fetch(sql.LIST_ITEMS[order], conversation_id, owner, cursor, limit + 1)
        if not rows:
            raise ConversationMissing(conversation_id)
        if not rows[0][0]:
            raise CursorMissing(after or "")
        if rows[0][1] is None:
            return ItemPage(ids=[], bodies=[], has_more=False)
        page = rows[:limit]
        return ItemPage(
            ids=[r[1].decode() for r in page],
            bodies=[r[2] for r in page],
            has_more=len(rows) > limit,
        )

    async def get_item(self, owner: str, conversation_id: str, item_id: str) -> bytes:
        row = await self._fetchrow(sql.GET_ITEM, conversation_id, owner, _key(item_id))
        if row is None:
            raise ConversationMissing(conversation_id)
        if row[0] is None:
            raise ItemMissing(item_id)
        body: bytes = row[0]
        return body

    async def delete_item(self, owner: str, conversation_id: str, item_id: str) -> ConversationRow:
        if self._quotas is not None and _matchable(conversation_id):
            async with self._connection() as conn, conn.transaction():
                await conn.execute(usage.LOCK, owner)
                size = await conn.fetchval(usage.ITEM_BYTES, conversation_id, _key(item_id))
                row = await conn.fetchrow(sql.DELETE_ITEM, conversation_id, owner, _key(item_id))
                if row is not None and row[3]:
                    await conn.execute(usage.USE, owner, 0, -1, -(size or 0))
        else:
            row = await self._fetchrow(sql.DELETE_ITEM, conversation_id, owner, _key(item_id))
        if row is None:
            raise ConversationMissing(conversation_id)
        if not row[3]:
            raise ItemMissing(item_id)
        return _conversation(row)

    async def find_items(
        self, owner: str, item_ids: Sequence[str], *, max_bytes: int | None = None
    ) -> dict[str, bytes]:
        # Where each item is and its size first; the bodies only if the sizes allow.
        keys = [_key(i) for i in dict.fromkeys(item_ids)]
        located = {r[0].decode(): (r[1], r[2], r[3]) for r in
                   await self._fetch(sql.LOCATE_ITEMS, keys, owner)}  # fmt: skip
        check_copies(item_ids, {i: size for i, (_, _, size) in located.items()}, max_bytes)
        if not located:
            return {}
        places = list(located.values())
        rows = await self._fetch(sql.ITEM_BODIES, [p[0] for p in places], [p[1] for p in places])
        bodies = {(r[0], r[1]): r[2] for r in rows}
        # An item deleted between the two reads is not found.
        return {i: bodies[(c, s)] for i, (c, s, _) in located.items() if (c, s) in bodies}

    async def item_count(self, owner: str, conversation_id: str) -> int:
        """How many items the conversation holds (deleted ones not counted): the count
        kept on its row."""
        row = await self._fetchrow(sql.ITEM_COUNT, conversation_id, owner)
        if row is None:
            raise ConversationMissing(conversation_id)
        counted: int = row[0]
        return counted

    async def all_items(self, owner: str, conversation_id: str) -> list[bytes]:
        row = await self._fetchrow(sql.ALL_ITEMS, conversation_id, owner)
        if row is None:
            raise ConversationMissing(conversation_id)
        bodies: list[bytes] = row[0]
        return bodies

    async def history_since(
        self, owner: str, conversation_id: str, next_seq: int, deleted: int
    ) -> HistoryRead:
        row = await self._fetchrow(sql.HISTORY_SINCE, conversation_id, owner, next_seq, deleted)
        if row is None:
            raise ConversationMissing(conversation_id)
        return HistoryRead(row[0], row[1], row[2], row[3])

    async def save_turn(self, owner: str, turn: Turn, *, max_items: int | None = None) -> None:
        if turn.conversation_id is None:
            if turn.response is not None:
                await self._execute(responses.INSERT, *responses.insert_args(owner, turn.response))
            return
        if turn.response is None:
            await self.append_items(owner, turn.conversation_id, turn.items, max_items=max_items)
            return
        await self._append_limited(
            sql.SAVE_TURN,
            owner,
            turn.conversation_id,
            turn.items,
            max_items,
            int(time.time()),
            *responses.turn_args(turn.response),
            max_items,
        )

    async def get_response(self, owner: str, response_id: str) -> StoredResponse:
        row = await self._fetchrow(responses.GET, response_id, owner)
        if row is None:
            raise ResponseMissing(response_id)
        return responses.stored(row)

    async def response_chain(self, owner: str, response_id: str) -> list[StoredResponse]:
        rows = await self._fetch(responses.CHAIN, response_id, owner)
        if not rows or rows[-1][0] != response_id:
            raise ResponseMissing(response_id)
        return [responses.stored(r) for r in rows]

    async def responses_version(self, owner: str, response_ids: Sequence[str]) -> tuple[int, int]:
        row = await self._fetchrow(responses.VERSION, owner, list(response_ids))
        return (row[0], row[1]) if row is not None else (0, 0)

    async def delete_response(self, owner: str, response_id: str) -> None:
        if await self._fetchrow(responses.DELETE, response_id, owner) is None:
            raise ResponseMissing(response_id)

    async def list_responses(
        self, owner: str, *, after: str | None, limit: int, order: Order, model: str | None
    ) -> ResponsePage:
        rows = await self._fetch(responses.LIST[order], owner, after, model, limit + 1)
        if not rows:  # a key no stored response can have
            if not _matchable(after):
                raise CursorMissing(after or "")
            return ResponsePage([], [], False)
        if not rows[0][0]:
            raise CursorMissing(after or "")
        if rows[0][1] is None:
            return ResponsePage([], [], False)
        page = rows[:limit]
        return ResponsePage([r[1] for r in page], [r[2] for r in page], len(rows) > limit)


async def _migrate(conn: Any, *, recount: bool = False) -> None:
    """Applies pending migrations, each in its own transaction, holding an advisory lock
    so that replicas starting together wait for each other instead of racing."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)"
        )
        applied = {row[0] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for migration in migrations.load("postgres"):
            if migration.version in applied:
                continue
            log.info("applying postgres migration %04d_%s", migration.version, migration.name)
            async with conn.transaction():
                await conn.execute(migration.sql)  # no arguments: several statements are fine
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    int(time.time()),
                )
        if recount:  # under the same lock: replicas starting together count once each
            await usage.recount(conn)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
