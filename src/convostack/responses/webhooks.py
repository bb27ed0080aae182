"""Webhooks of background responses: `response.completed`, `response.incomplete`,
`response.failed` and `response.cancelled` POSTed to the configured URLs, signed as the
Standard Webhooks scheme says (what the `openai` client's `webhooks.unwrap` verifies):
`webhook-id`, `webhook-timestamp`, and `webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">` under the endpoint's secret (`whsec_` + base64 of the key).

Delivered by the process that ended the response, tried a few times on a failure or a
non-2xx answer; not kept across a restart of that process.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import time
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field

from convostack.ids import new_id

log = logging.getLogger(__name__)

EventType = Literal[
    "response.completed", "response.incomplete", "response.failed", "response.cancelled"
]
ALL_EVENTS: list[EventType] = [
    "response.completed", "response.incomplete", "response.failed", "response.cancelled"
]  # fmt: skip
# Seconds to wait before each try after the first.
RETRY_DELAYS = (1.0, 5.0, 30.0)
TIMEOUT_SECONDS = 10.0


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
    def __init__(self, endpoints: list[WebhookEndpoint]):
        self._endpoints = endpoints
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: Any = None

    @property
    def enabled(self) -> bool:
        return bool(self._endpoints)

    def send(self, event_type: EventType, response_id: str) -> None:
        """Delivers the event to every endpoint that takes it, off the caller's path."""
        webhook_id = new_id("evt")
        event = {"id": webhook_id, "object": "event", "type": event_type,
                 "created_at": int(time.time()), "data": {"id": response_id}}  # fmt: skip
        body = orjson.dumps(event)
        for endpoint in self._endpoints:
            if event_type in endpoint.events:
                task = asyncio.create_task(self._deliver(endpoint, webhook_id, body))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(self, endpoint: WebhookEndpoint, webhook_id: str, body: bytes) -> None:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
            )
        for delay in (0.0, *RETRY_DELAYS):
            await asyncio.sleep(delay)
            timestamp = int(time.time())  # signed afresh: a receiver refuses old ones
            headers = {
                "content-type": "application/json",
                "webhook-id": webhook_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": signature(endpoint.secret, webhook_id, timestamp, body),
            }
            try:
                async with self._session.post(endpoint.url, data=body, headers=headers) as answer:
                    if 200 <= answer.status < 300:
                        return
                    outcome = f"HTTP {answer.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcome = type(exc).__name__
            host = urlsplit(endpoint.url).hostname  # a URL may hold a token: not logged
            log.warning("webhook %s to %s not delivered: %s", webhook_id, host, outcome)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None
