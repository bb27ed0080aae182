"""Background responses on SQLite: the SqliteStore's methods for the queue and the
stream events (background_base.BackgroundStore). Every write runs in the writer's
transaction, which holds SQLite's write lock: a claim is one `UPDATE ... RETURNING`."""

from __future__ import annotations

import sqlite3

from convostack.storage import sqlite_responses as responses
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
from convostack.storage.sqlite_files import SqliteFiles

_RUNNING = ", ".join(f"'{status}'" for status in RUNNING)
# Events read per call of read_events.
EVENT_PAGE = 500


def _marks(values: tuple[str, ...]) -> str:
    return ", ".join("?" * len(values))


def _append(conn: sqlite3.Connection, response_id: str, first: int, events: list[bytes]) -> None:
    conn.executemany(
        "INSERT INTO response_events (response_id, seq, event) VALUES (?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        [(response_id, first + n, event) for n, event in enumerate(events)],
    )


class SqliteBackground(SqliteFiles):
    """Mixed into SqliteStore (through SqliteFiles' connection methods)."""

    async def enqueue_response(
        self, owner: str, response: StoredResponse, request: bytes, first_event: bytes | None
    ) -> None:
        def op(conn: sqlite3.Connection) -> None:
            responses.insert_response(conn, owner, response)
            conn.execute(
                "UPDATE responses SET request = ?, events = ? WHERE id = ?",
                (request, EVENTS_NONE if first_event is None else EVENTS_KEPT, response.id),
            )
            if first_event is not None:
                _append(conn, response.id, 0, [first_event])

        await self._write(op)

    async def claim_response(self, now: int, lease_seconds: int) -> BackgroundJob | None:
        def op(conn: sqlite3.Connection) -> BackgroundJob | None:
            row = conn.execute(
                "UPDATE responses SET status = 'in_progress', lease_until = ?1, "
                "attempts = attempts + 1 WHERE pos = (SELECT pos FROM responses "
                f"WHERE {UNFINISHED} AND (status = '{QUEUED}' OR lease_until < ?2) "
                "ORDER BY pos LIMIT 1) "
                "RETURNING owner, id, created_at, attempts, request, events, body",
                (now + lease_seconds, now),
            ).fetchone()
            if row is None:
                return None
            return BackgroundJob(row[0], row[1], row[2], row[3], row[4] or b"",
                                 row[5] == EVENTS_KEPT, row[6])  # fmt: skip

        return await self._write(op)

    async def renew_response(
        self, response_id: str, attempts: int, until: int, body: bytes | None = None
    ) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            return bool(conn.execute(
                "UPDATE responses SET lease_until = ?, body = coalesce(?, body) WHERE id = ? "
                f"AND attempts = ? AND status IN ({_RUNNING})",
                (until, body, response_id, attempts),
            ).rowcount)  # fmt: skip

        return await self._write(op)

    async def commit_response(self, response_id: str, attempts: int, now: int) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            return bool(conn.execute(
                "UPDATE responses SET status = 'completing', request = NULL, finished_at = ? "
                "WHERE id = ? AND attempts = ? AND status = 'in_progress'",
                (now, response_id, attempts),
            ).rowcount)  # fmt: skip

        return await self._write(op)

    async def settle_response(self, settle: Settle, now: int) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            claim = "" if settle.attempts is None else "AND attempts = ?"
            done = conn.execute(
                "UPDATE responses SET status = ?, body = ?, lease_until = NULL, request = NULL, "
                f"finished_at = ? WHERE id = ? AND status IN ({_marks(settle.from_statuses)}) "
                f"{claim} RETURNING events",
                (settle.status, settle.body, now, settle.response_id, *settle.from_statuses,
                 *(() if settle.attempts is None else (settle.attempts,))),
            ).fetchone()  # fmt: skip
            if done is None:
                return False
            if settle.event is not None and done[0] == EVENTS_KEPT:
                (last,) = conn.execute(
                    "SELECT coalesce(max(seq), -1) FROM response_events WHERE response_id = ?",
                    (settle.response_id,),
                ).fetchone()
                _append(conn, settle.response_id, last + 1, [settle.event])
            return True

        return await self._write(op)

    async def append_events(self, response_id: str, first: int, events: list[bytes]) -> None:
        await self._write(lambda conn: _append(conn, response_id, first, events))

    async def read_events(self, owner: str, response_id: str, after: int) -> EventPage:
        def op(conn: sqlite3.Connection) -> EventPage:
            row = conn.execute(
                "SELECT status, events FROM responses WHERE id = ? AND owner = ?",
                (response_id, owner),
            ).fetchone()
            if row is None:
                raise ResponseMissing(response_id)
            events = conn.execute(
                "SELECT seq, event FROM response_events WHERE response_id = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (response_id, after, EVENT_PAGE),
            ).fetchall()
            return EventPage([(r[0], r[1]) for r in events], row[0], row[1])

        return await self._read(op)

    async def prune_events(self, finished_before: int) -> int:
        def op(conn: sqlite3.Connection) -> int:
            ids = [r[0] for r in conn.execute(
                "UPDATE responses SET events = ? WHERE events = ? AND finished_at < ? "
                "RETURNING id",
                (EVENTS_PRUNED, EVENTS_KEPT, finished_before),
            ).fetchall()]  # fmt: skip
            conn.executemany("DELETE FROM response_events WHERE response_id = ?",
                             [(i,) for i in ids])  # fmt: skip
            return len(ids)

        return await self._write_in_thread(op)
