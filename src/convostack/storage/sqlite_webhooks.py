"""The webhook outbox on SQLite (webhooks_base.WebhookStore): a claim is one
`UPDATE ... RETURNING` in the writer's transaction."""

from __future__ import annotations

import sqlite3

import orjson

from convostack.storage.sqlite_files import SqliteFiles
from convostack.storage.webhooks_base import WebhookJob


class SqliteWebhooks(SqliteFiles):
    """Mixed into SqliteStore (through SqliteFiles' connection methods)."""

    async def claim_webhook(self, now: int, lease_seconds: int) -> WebhookJob | None:
        def op(conn: sqlite3.Connection) -> WebhookJob | None:
            row = conn.execute(
                "UPDATE webhook_outbox SET next_at = ?1, attempts = attempts + 1 "
                "WHERE pos = (SELECT pos FROM webhook_outbox WHERE next_at <= ?2 "
                "ORDER BY next_at, pos LIMIT 1) "
                "RETURNING pos, response_id, type, created_at, attempts, delivered",
                (now + lease_seconds, now),
            ).fetchone()
            if row is None:
                return None
            return WebhookJob(row[0], row[1], row[2], row[3], row[4], orjson.loads(row[5]))

        return await self._write(op)

    async def settle_webhook(
        self, job: WebhookJob, delivered: list[str], retry_at: int | None
    ) -> None:
        def op(conn: sqlite3.Connection) -> None:
            if retry_at is None:
                conn.execute(
                    "DELETE FROM webhook_outbox WHERE pos = ? AND attempts = ?",
                    (job.pos, job.attempts),
                )
            else:
                conn.execute(
                    "UPDATE webhook_outbox SET next_at = ?, delivered = ? "
                    "WHERE pos = ? AND attempts = ?",
                    (retry_at, orjson.dumps(delivered), job.pos, job.attempts),
                )

        await self._write(op)

    async def drop_webhooks(self, before: int, limit: int) -> int:
        def op(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "DELETE FROM webhook_outbox WHERE pos IN "
                "(SELECT pos FROM webhook_outbox WHERE created_at < ? ORDER BY pos LIMIT ?)",
                (before, limit),
            ).rowcount

        return await self._write(op)
