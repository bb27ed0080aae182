"""The webhook outbox's side of the store (the rows the database writes when a background
response ends; see the migration `webhook_outbox`): claimed under a lease by one process,
then gone once delivered, or put back for a later try."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class WebhookJob:
    pos: int
    response_id: str
    type: str  # response.completed, .incomplete, .failed or .cancelled
    created_at: int
    attempts: int  # counting this claim
    delivered: list[str]  # the endpoints (URLs) that took it on earlier tries


class WebhookStore(Protocol):
    async def claim_webhook(self, now: int, lease_seconds: int) -> WebhookJob | None:
        """The oldest event due (never tried, or its try or lease time passed), leased."""
        ...

    async def settle_webhook(
        self, job: WebhookJob, delivered: list[str], retry_at: int | None
    ) -> None:
        """After a try: gone (`retry_at` None), or due again at `retry_at` remembering the
        endpoints that took it. Nothing if another claim took the row meanwhile."""
        ...

    async def drop_webhooks(self, before: int, limit: int) -> int:
        """Delete up to `limit` events written before `before`: a server with no endpoint
        configured sends none, and leaves the newer ones to a replica that may have some."""
        ...
