"""Background responses on PostgreSQL: the PostgresStore's methods for the queue and the
stream events (background_base.BackgroundStore). A claim takes its row with FOR UPDATE
SKIP LOCKED, so replicas claiming at once never take the same response."""

from __future__ import annotations

from typing import Any

from convostack.storage import postgres_responses as responses
from convostack.storage.background_base import (
    EVENTS_KEPT,
    EVENTS_NONE,
    EVENTS_PRUNED,
    QUEUED,
    RUNNING,
    UNFINISHED,
    BackgroundJob,
    EventPage,
    Settle,
)
from convostack.storage.base import ResponseMissing, StoredResponse
from convostack.storage.postgres_files import PostgresFiles

# Events read per call of read_events.
EVENT_PAGE = 500

_APPEND = (
    "INSERT INTO response_events (response_id, seq, event) "
    "SELECT $1, $2 + n - 1, e FROM unnest($3::bytea[]) WITH ORDINALITY AS t(e, n) "
    "ON CONFLICT DO NOTHING"
)


class PostgresBackground(PostgresFiles):
    """Mixed into PostgresStore (through PostgresFiles' `_run`)."""

    async def enqueue_response(
        self, owner: str, response: StoredResponse, request: bytes, first_event: bytes | None
    ) -> None:
        async def op(conn: Any) -> None:
            await conn.execute(responses.INSERT, *responses.insert_args(owner, response))
            await conn.execute(
                "UPDATE responses SET request = $1, events = $2 WHERE id = $3",
                request, EVENTS_NONE if first_event is None else EVENTS_KEPT, response.id,
            )  # fmt: skip
            if first_event is not None:
                await conn.execute(_APPEND, response.id, 0, [first_event])

        await self._run(op, transaction=True)

    async def claim_response(self, now: int, lease_seconds: int) -> BackgroundJob | None:
        async def op(conn: Any) -> BackgroundJob | None:
            row = await conn.fetchrow(
                "UPDATE responses SET status = 'in_progress', lease_until = $1, "
                "attempts = attempts + 1 WHERE pos = (SELECT pos FROM responses "
                f"WHERE {UNFINISHED} AND (status = '{QUEUED}' OR lease_until < $2) "
                "ORDER BY pos LIMIT 1 FOR UPDATE SKIP LOCKED) "
                "RETURNING owner, id, created_at, attempts, request, events, body",
                now + lease_seconds, now,
            )  # fmt: skip
            if row is None:
                return None
            return BackgroundJob(row[0], row[1], row[2], row[3], row[4] or b"",
                                 row[5] == EVENTS_KEPT, row[6])  # fmt: skip

        return await self._run(op)  # type: ignore[no-any-return]

    async def renew_response(
        self, response_id: str, attempts: int, until: int, body: bytes | None = None
    ) -> bool:
        async def op(conn: Any) -> bool:
            row = await conn.fetchrow(
                "UPDATE responses SET lease_until = $1, body = coalesce($2, body) WHERE id = $3 "
                "AND attempts = $4 AND status = ANY($5::text[]) RETURNING 1",
                until, body, response_id, attempts, list(RUNNING),
            )  # fmt: skip
            return row is not None

        return await self._run(op)  # type: ignore[no-any-return]

    async def commit_response(self, response_id: str, attempts: int, now: int) -> bool:
        async def op(conn: Any) -> bool:
            row = await conn.fetchrow(
                "UPDATE responses SET status = 'completing', request = NULL, finished_at = $1 "
                "WHERE id = $2 AND attempts = $3 AND status = 'in_progress' RETURNING 1",
                now, response_id, attempts,
            )  # fmt: skip
            return row is not None

        return await self._run(op)  # type: ignore[no-any-return]

    async def settle_response(self, settle: Settle, now: int) -> bool:
        async def op(conn: Any) -> bool:
            done = await conn.fetchrow(
                "UPDATE responses SET status = $1, body = $2, lease_until = NULL, "
                "request = NULL, finished_at = $3 WHERE id = $4 AND status = ANY($5::text[]) "
                "AND ($6::integer IS NULL OR attempts = $6) RETURNING events",
                settle.status, settle.body, now, settle.response_id,
                list(settle.from_statuses), settle.attempts,
            )  # fmt: skip
            if done is None:
                return False
            if settle.event is not None and done[0] == EVENTS_KEPT:
                last = await conn.fetchval(
                    "SELECT coalesce(max(seq), -1) FROM response_events WHERE response_id = $1",
                    settle.response_id,
                )
                await conn.execute(_APPEND, settle.response_id, last + 1, [settle.event])
            return True

        return await self._run(op, transaction=True)  # type: ignore[no-any-return]

    async def append_events(self, response_id: str, first: int, events: list[bytes]) -> None:
        async def op(conn: Any) -> None:
            await conn.execute(_APPEND, response_id, first, events)

        await self._run(op)

    async def read_events(self, owner: str, response_id: str, after: int) -> EventPage:
        async def op(conn: Any) -> EventPage:
            row = await conn.fetchrow(
                "SELECT status, events FROM responses WHERE id = $1 AND owner = $2",
                response_id, owner,
            )  # fmt: skip
            if row is None:
                raise ResponseMissing(response_id)
            events = await conn.fetch(
                "SELECT seq, event FROM response_events WHERE response_id = $1 AND seq > $2 "
                "ORDER BY seq LIMIT $3",
                response_id, after, EVENT_PAGE,
            )  # fmt: skip
            return EventPage([(r[0], r[1]) for r in events], row[0], row[1])

        return await self._run(op)  # type: ignore[no-any-return]

    async def prune_events(self, finished_before: int) -> int:
        async def op(conn: Any) -> int:
            rows = await conn.fetch(
                "UPDATE responses SET events = $1 WHERE events = $2 AND finished_at < $3 "
                "RETURNING id",
                EVENTS_PRUNED, EVENTS_KEPT, finished_before,
            )  # fmt: skip
            ids = [r[0] for r in rows]
            await conn.execute("DELETE FROM response_events WHERE response_id = ANY($1)", ids)
            return len(ids)

        return await self._run(op, transaction=True)  # type: ignore[no-any-return]
