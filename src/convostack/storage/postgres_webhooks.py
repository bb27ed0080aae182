"""The webhook outbox on PostgreSQL (webhooks_base.WebhookStore): claims with FOR UPDATE
SKIP LOCKED, so replicas never deliver the same event at once."""

from __future__ import annotations

from typing import Any

import orjson

from convostack.storage.postgres_files import PostgresFiles
from convostack.storage.webhooks_base import WebhookJob


class PostgresWebhooks(PostgresFiles):
    """Mixed into PostgresStore (through PostgresFiles' `_run`)."""

    async def claim_webhook(self, now: int, lease_seconds: int) -> WebhookJob | None:
        async def op(conn: Any) -> WebhookJob | None:
            row = await conn.fetchrow(
                "UPDATE webhook_outbox SET next_at = $1, attempts = attempts + 1 "
                "WHERE pos = (SELECT pos FROM webhook_outbox WHERE next_at <= $2 "
                "ORDER BY next_at, pos LIMIT 1 FOR UPDATE SKIP LOCKED) "
                "RETURNING pos, response_id, type, created_at, attempts, delivered",
                now + lease_seconds, now,
            )  # fmt: skip
            if row is None:
                return None
            return WebhookJob(row[0], row[1], row[2], row[3], row[4], orjson.loads(row[5]))

        return await self._run(op)  # type: ignore[no-any-return]

    async def settle_webhook(
        self, job: WebhookJob, delivered: list[str], retry_at: int | None
    ) -> None:
        async def op(conn: Any) -> None:
            if retry_at is None:
                await conn.execute(
                    "DELETE FROM webhook_outbox WHERE pos = $1 AND attempts = $2",
                    job.pos, job.attempts,
                )  # fmt: skip
            else:
                await conn.execute(
                    "UPDATE webhook_outbox SET next_at = $1, delivered = $2 "
                    "WHERE pos = $3 AND attempts = $4",
                    retry_at, orjson.dumps(delivered), job.pos, job.attempts,
                )  # fmt: skip

        await self._run(op)

    async def drop_webhooks(self, before: int, limit: int) -> int:
        async def op(conn: Any) -> int:
            rows = await conn.fetch(
                "DELETE FROM webhook_outbox WHERE pos IN (SELECT pos FROM webhook_outbox "
                "WHERE created_at < $1 ORDER BY pos LIMIT $2 FOR UPDATE SKIP LOCKED) "
                "RETURNING 1",
                before, limit,
            )  # fmt: skip
            return len(rows)

        return await self._run(op)  # type: ignore[no-any-return]
