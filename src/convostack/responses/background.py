"""Background responses (`background: true`): created `queued` at once, run by whichever
process's worker takes them (background_worker.py), cancelled from any replica, and,
when created with `stream: true`, streamed from their stored events, so a client that
dropped its stream resumes with `starting_after` on any replica.

The request is kept sealed (AES-GCM, sealing.py) until the turn runs, so the MCP
headers and authorization it may carry are never stored in clear. The turn's input
items get their ids when the response is created, so the response's input items and
the conversation's are the same items.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import orjson

from convostack.errors import InvalidRequestError
from convostack.providers.base import JSONDict
from convostack.responses.background_worker import (
    PURPOSE,
    BackgroundWorker,
    WorkerSettings,
    restatused,
)
from convostack.responses.models import ResponseCreate
from convostack.responses.output import Event
from convostack.responses.service import ResponseService, response_not_found
from convostack.responses.streaming import frame
from convostack.responses.webhooks import Webhooks
from convostack.storage.background_base import (
    CANCELLABLE,
    EVENTS_NONE,
    EVENTS_PRUNED,
    EventPage,
    Settle,
)
from convostack.storage.base import ResponseMissing, Store

TERMINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")
FINAL = ("completed", "incomplete", "failed", "cancelled")
# A finished response whose terminal event did not follow within this long (its process
# died between the two writes) gets one made from the stored response.
TERMINAL_GRACE_SECONDS = 5.0
# How long a cancel waits for a turn that is writing its result.
COMPLETING_WAIT_SECONDS = 10.0


class BackgroundResponses:
    def __init__(
        self,
        store: Store,
        service: ResponseService,
        settings: WorkerSettings,
        stream_poll_seconds: float,
        webhooks: Webhooks,
    ):
        self._store = store
        self._webhooks = webhooks
        self._service = service
        self._settings = settings
        self._poll = stream_poll_seconds
        self.worker = BackgroundWorker(store, service, settings, webhooks)

    def start(self) -> None:
        self.worker.start()

    async def close(self) -> None:
        await self.worker.close()
        await self._webhooks.close()

    async def create(self, owner: str, body: ResponseCreate) -> JSONDict:
        """Checks the request as any turn, stores it `queued`, and returns that."""
        turn = await self._service.prepare(owner, body, background=True)
        await turn.tools.close()
        # Run later with the input items as prepared now (their ids, copied references).
        request = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
        request["input"] = [orjson.loads(item.body) for item in turn.input_items.items]
        queued = turn.envelope("queued", [])
        first = None
        if body.stream:
            first = orjson.dumps({"type": "response.created", "response": queued})
        sealed = self._service.sealer.seal(request, PURPOSE).encode()
        await self._store.enqueue_response(owner, self._service.stored(turn, queued), sealed, first)
        self.worker.wake()
        return queued

    async def cancel(self, owner: str, response_id: str) -> JSONDict:
        """A queued or running background response becomes `cancelled` (its turn, on any
        replica, stops and writes nothing); cancelling it again answers the same."""
        deadline = time.monotonic() + COMPLETING_WAIT_SECONDS
        while True:
            stored = await self._service.get(owner, response_id)
            response: JSONDict = orjson.loads(stored.body)
            if not response.get("background"):
                raise InvalidRequestError(
                    "Only responses created with background=true can be cancelled.",
                    code="invalid_value",
                    param="response_id",
                )
            if stored.status == "cancelled":
                return response
            if stored.status in CANCELLABLE:
                cancelled = restatused(stored.body, "cancelled")
                settle = Settle(response_id, "cancelled", orjson.dumps(cancelled), CANCELLABLE)
                if await self._store.settle_response(settle, int(time.time())):
                    self.worker.cancel_local(response_id)
                    self._webhooks.send("response.cancelled", response_id)
                    return cancelled
            elif stored.status in FINAL:
                raise InvalidRequestError(
                    f"Cannot cancel a {stored.status} response.",
                    code="invalid_value",
                    param="response_id",
                )
            if time.monotonic() > deadline:  # `completing` for too long
                raise InvalidRequestError(
                    "The response is being completed and can no longer be cancelled.",
                    code="invalid_value",
                    param="response_id",
                )
            await asyncio.sleep(0.02)  # claimed or completing meanwhile: look again

    async def stream(self, owner: str, response_id: str, after: int) -> AsyncIterator[bytes] | None:
        """The framed events of a background response created with `stream: true`, after
        `after`, following it live until it ends; None for a response without kept
        events (replayed from the stored response instead). Checked before the stream
        starts: a response whose events were pruned is a 400."""
        try:
            page = await self._store.read_events(owner, response_id, after)
        except ResponseMissing:
            raise response_not_found(response_id) from None
        if page.events_state == EVENTS_NONE:
            return None
        if page.events_state == EVENTS_PRUNED:
            raise InvalidRequestError(
                f"The stream events of response '{response_id}' were deleted "
                f"{self._settings.retention_seconds} seconds after it finished "
                "(background_events_retention_seconds); retrieve the response without "
                "'stream' instead.",
                code="invalid_value",
                param="stream",
            )
        return self._follow(owner, response_id, after, page)

    async def _follow(
        self, owner: str, response_id: str, after: int, page: EventPage
    ) -> AsyncIterator[bytes]:
        finished_at: float | None = None
        while True:
            for number, raw in page.events:
                event: Event = orjson.loads(raw)
                yield frame(event, number)
                after = number
                if event["type"] in TERMINAL_EVENTS:
                    return
            if not page.events and page.status in FINAL:
                if page.status == "cancelled" or await self._ended_at(owner, response_id, after):
                    return
                finished_at = finished_at or time.monotonic()
                if time.monotonic() - finished_at > TERMINAL_GRACE_SECONDS:
                    yield await self._terminal(owner, response_id, after + 1)
                    return
            if not page.events:
                await self.worker.signals.wait(response_id, self._poll)
            page = await self._store.read_events(owner, response_id, after)

    async def _ended_at(self, owner: str, response_id: str, number: int) -> bool:
        """Whether event `number` is the terminal one (a resume after the last event)."""
        if number < 0:
            return False
        page = await self._store.read_events(owner, response_id, number - 1)
        return bool(page.events) and orjson.loads(page.events[0][1])["type"] in TERMINAL_EVENTS

    async def _terminal(self, owner: str, response_id: str, number: int) -> bytes:
        stored = await self._service.get(owner, response_id)
        response = orjson.loads(stored.body)
        kind = {"completed": "response.completed", "incomplete": "response.incomplete"}
        return frame({"type": kind.get(stored.status, "response.failed"), "response": response},
                     number)  # fmt: skip
