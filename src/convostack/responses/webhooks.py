"""Webhooks of background responses: `response.completed`, `response.incomplete`,
`response.failed` and `response.cancelled` POSTed to the configured URLs, signed as the
Standard Webhooks scheme says (what the `openai` client's `webhooks.unwrap` verifies):
`webhook-id`, `webhook-timestamp`, and `webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">` under the endpoint's secret (`whsec_` + base64 of the key).

Durable: the database itself writes an outbox row in the transaction that ends a
background response (migration `webhook_outbox`), and a worker in every serving process
takes due rows (a lease; SKIP LOCKED on PostgreSQL) and POSTs them, so an event survives
the end of the process that ended the response. An endpoint that fails or answers
non-2xx is tried again after 1, 5, 30 and 300 seconds (the others are not sent twice);
then the event is dropped with a warning. The event id is derived from the response and
the type, so a receiver can tell a repeat (a lease that ran out mid-delivery) by it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field

from convostack.process_task import ProcessTask
from convostack.queue_worker import QueueWorker
from convostack.storage.base import Store, StoreUnavailable
from convostack.storage.webhooks_base import WebhookJob

log = logging.getLogger(__name__)

EventType = Literal[
    "response.completed", "response.incomplete", "response.failed", "response.cancelled"
]
ALL_EVENTS: list[EventType] = [
    "response.completed", "response.incomplete", "response.failed", "response.cancelled"
]  # fmt: skip
# Seconds to wait before each try after the first.
RETRY_DELAYS = (1, 5, 30, 300)
TIMEOUT_SECONDS = 10.0
# How long a process holds an event it delivers: every endpoint's try fits in it.
LEASE_SECONDS = int(TIMEOUT_SECONDS * 3)
# Without endpoints, events are deleted this often, once this old (a server with none
# sends none; a replica configured with some has had the time to).
DROP_EVERY_SECONDS = 60.0
DROP_AFTER_SECONDS = 3600
DROP_BATCH = 1000


class WebhookEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="Where the events are POSTed.")
    secret: str = Field(
        description="The signing secret: 'whsec_' and the base64 of the key (as OpenAI's); "
        "the receiver verifies with client.webhooks.unwrap(body, headers, secret=...)."
    )
    events: list[EventType] = Field(
        default_factory=lambda: list(ALL_EVENTS), description="The event types to send."
    )


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else (
        secret.encode()
    )  # fmt: skip
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


class Webhooks:
    """The outbox's worker: due events to the endpoints that take them."""

    def __init__(self, store: Store, endpoints: list[WebhookEndpoint], *, poll_seconds: float):
        self._store = store
        self._endpoints = endpoints
        self._session: Any = None
        self._queue = QueueWorker(
            "convostack-webhooks",
            lambda: store.claim_webhook(int(time.time()), LEASE_SECONDS),
            self._deliver,
            lambda job: str(job.pos),
            poll_seconds=poll_seconds,
            concurrency=4,
        )
        self._dropping = ProcessTask("convostack-webhooks-drop", self._drop)

    def start(self) -> None:
        (self._queue if self._endpoints else self._dropping).start()

    async def close(self) -> None:
        # Deliveries cut short are due again at once (for the next server), not after
        # their lease: only a process that dies leaves its lease to run out.
        for job in await self._queue.close():
            try:
                await self._store.settle_webhook(job, job.delivered, int(time.time()))
            except StoreUnavailable as exc:
                log.warning("webhook of %s left to its lease: %s", job.response_id, exc)
        await self._dropping.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _deliver(self, job: WebhookJob) -> None:
        event_id = (
            "evt_" + hashlib.sha256(f"{job.response_id} {job.type}".encode()).hexdigest()[:32]
        )
        event = {"id": event_id, "object": "event", "type": job.type,
                 "created_at": job.created_at, "data": {"id": job.response_id}}  # fmt: skip
        body = orjson.dumps(event)
        to_send = [e for e in self._endpoints
                   if job.type in e.events and _key(e) not in job.delivered]  # fmt: skip
        sent = await asyncio.gather(*(self._post(e, event_id, body) for e in to_send))
        delivered = job.delivered + [_key(e) for e, ok in zip(to_send, sent, strict=True) if ok]
        retry_at = None
        if not all(sent):
            if job.attempts <= len(RETRY_DELAYS):
                retry_at = int(time.time()) + RETRY_DELAYS[job.attempts - 1]
            else:
                log.warning("webhook %s (%s of %s) dropped after %d tries",
                            event_id, job.type, job.response_id, job.attempts)  # fmt: skip
        try:
            await self._store.settle_webhook(job, delivered, retry_at)
        except StoreUnavailable as exc:  # the lease runs out and it is sent again
            log.warning("webhook %s not settled: %s", event_id, exc)

    async def _post(self, endpoint: WebhookEndpoint, event_id: str, body: bytes) -> bool:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
            )
        timestamp = int(time.time())  # signed afresh at each try: receivers refuse old ones
        headers = {
            "content-type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(endpoint.secret, event_id, timestamp, body),
        }
        try:
            async with self._session.post(endpoint.url, data=body, headers=headers) as answer:
                if 200 <= answer.status < 300:
                    return True
                outcome = f"HTTP {answer.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            outcome = type(exc).__name__
        host = urlsplit(endpoint.url).hostname  # a URL may hold a token: not logged
        log.warning("webhook %s to %s not delivered: %s", event_id, host, outcome)
        return False

    async def _drop(self) -> None:
        while True:
            try:
                before = int(time.time()) - DROP_AFTER_SECONDS
                while await self._store.drop_webhooks(before, DROP_BATCH) == DROP_BATCH:
                    pass
            except StoreUnavailable as exc:
                log.warning("webhook events not dropped: %s", exc)
            await asyncio.sleep(DROP_EVERY_SECONDS)


def _key(endpoint: WebhookEndpoint) -> str:
    """How the outbox remembers an endpoint that took an event: not its URL, which may
    hold a token."""
    return hashlib.sha256(endpoint.url.encode()).hexdigest()[:16]
