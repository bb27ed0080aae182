"""The one place background responses run: a worker per process that takes queued
responses from the database and runs them through the ordinary turn path.

The queue is the `responses` table (storage/background_base.py). The worker claims the
oldest queued row (FOR UPDATE SKIP LOCKED on PostgreSQL, so replicas never take the
same one) with a lease, up to `concurrency` at once; while a turn runs, a heartbeat
renews the lease and reads whether the row is still the turn's: a cancel made on any
replica makes it stop the turn (one made in this process stops it at once). A worker
that dies leaves a lease that runs out: the next claim of that row sees a second
attempt and fails it with a clear error. It is never run again: its model calls and
tool calls (an MCP server's side effects) may have happened, and the client, told it
failed, may safely create it again. A turn writes its result only if its claim still
holds (`commit` marks the row `completing`, after which a cancel is refused), so a
cancelled turn appends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from convostack.providers.base import JSONDict
from convostack.queue_worker import QueueWorker
from convostack.responses.models import ResponseCreate
from convostack.responses.output import Event
from convostack.storage.background_base import RUNNING, BackgroundJob, Settle
from convostack.storage.base import ResponseMissing, Store, StoreUnavailable

if TYPE_CHECKING:
    from convostack.responses.service import ResponseService
    from convostack.responses.webhooks import Webhooks

log = logging.getLogger(__name__)

# The sealing purpose of a queued request (it may carry MCP headers: never in clear).
PURPOSE = "background"
# How often finished responses' events are looked for to prune, at most.
PRUNE_EVERY_SECONDS = 60.0

INTERRUPTED = {
    "code": "server_error",
    "message": "The server running this background response stopped before it finished "
    "(its lease ran out); nothing was added to the conversation. Create the response again.",
}
OTHER_KEY = {
    "code": "server_error",
    "message": "This background response was queued by a server with another sealing_key, "
    "so this one cannot read its request: give every replica the same sealing_key.",
}
SHUT_DOWN = {
    "code": "server_error",
    "message": "The server running this background response shut down before it finished; "
    "nothing was added to the conversation. Create the response again.",
}


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    concurrency: int
    poll_seconds: float
    lease_seconds: int
    retention_seconds: int

    @property
    def heartbeat_seconds(self) -> float:
        return min(self.poll_seconds, self.lease_seconds / 3)


def restatused(body: bytes, status: str, error: JSONDict | None = None) -> JSONDict:
    """A stored response body with another status (and error)."""
    response: JSONDict = orjson.loads(body)
    response["status"] = status
    if error is not None:
        response["error"] = error
    return response


class Signals:
    """In-process wake-ups of the streams that follow a response: its worker here says
    when it wrote events, so a follower does not wait for its next poll."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = {}

    def notify(self, response_id: str) -> None:
        for event in self._waiting.get(response_id, ()):
            event.set()

    async def wait(self, response_id: str, seconds: float) -> None:
        event = asyncio.Event()
        waiting = self._waiting.setdefault(response_id, set())
        waiting.add(event)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), seconds)
        finally:
            waiting.discard(event)
            if not waiting:
                self._waiting.pop(response_id, None)


class _Claim:
    """A running turn's hold on its row (turn.TurnClaim)."""

    def __init__(self, worker: BackgroundWorker, job: BackgroundJob):
        self._worker = worker
        self._job = job

    async def commit(self) -> bool:
        return await self._worker.store.commit_response(
            self._job.response_id, self._job.attempts, int(time.time())
        )

    async def settle(self, response: JSONDict) -> None:
        if self._worker.closing:
            return  # close() fails it with its own error
        await self._worker.settle(self._job, response)


class _EventWriter:
    """Appends a turn's events in order, as few writes as the database allows: events
    produced while a write is under way go together in the next one."""

    def __init__(self, store: Store, response_id: str, first: int, wrote: Callable[[], None]):
        self._store = store
        self._id = response_id
        self._next = first
        self._pending: list[bytes] = []
        self._flushing: asyncio.Task[None] | None = None
        self._wrote = wrote

    def add(self, event: Event) -> None:
        self._pending.append(orjson.dumps(event))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            await self._store.append_events(self._id, self._next, batch)
            self._next += len(batch)
            self._wrote()

    async def close(self) -> None:
        if self._flushing is not None:
            await self._flushing

    def cancel(self) -> None:
        if self._flushing is not None:
            self._flushing.cancel()


class BackgroundWorker:
    def __init__(
        self, store: Store, service: ResponseService, settings: WorkerSettings, webhooks: Webhooks
    ):
        self.store = store
        self._webhooks = webhooks
        self._service = service
        self._settings = settings
        self.signals = Signals()
        self.closing = False
        self._pruned_at = 0.0
        self._queue = QueueWorker(
            "convostack-background",
            lambda: store.claim_response(int(time.time()), settings.lease_seconds),
            self._run,
            lambda job: job.response_id,
            poll_seconds=settings.poll_seconds,
            concurrency=settings.concurrency,
            idle=self._prune,
        )

    def start(self) -> None:
        self._queue.start()

    def wake(self) -> None:
        self._queue.wake()

    def cancel_local(self, response_id: str) -> None:
        """Stops the turn at once if this process runs it (a cancel made here)."""
        running = self._queue.running.get(response_id)
        if running is not None:
            running[0].cancel()
        self.signals.notify(response_id)

    async def close(self) -> None:
        """Stops taking work; the turns running here fail with a clear error (a
        restarted server does not run them again: see the module's doc)."""
        self.closing = True
        for job in await self._queue.close():
            with contextlib.suppress(Exception):
                await self._fail(job, SHUT_DOWN)

    async def _prune(self) -> None:
        now = time.monotonic()
        every = min(PRUNE_EVERY_SECONDS, max(self._settings.retention_seconds / 2, 0.2))
        if now - self._pruned_at < every:
            return
        self._pruned_at = now
        try:
            await self.store.prune_events(int(time.time()) - self._settings.retention_seconds)
        except StoreUnavailable as exc:
            log.warning("background events not pruned: %s", exc)

    async def _run(self, job: BackgroundJob) -> None:
        try:
            if job.attempts > 1:
                await self._fail(job, INTERRUPTED)
            else:
                await self._turn(job)
            await self._announce(job)
        except asyncio.CancelledError:
            pass  # cancelled (here or on another replica), or the server is closing
        finally:
            self.signals.notify(job.response_id)

    async def _announce(self, job: BackgroundJob) -> None:
        """The webhook of how the turn ended (a cancel sends its own, where it is made)."""
        if not self._webhooks.enabled:
            return
        try:
            status = (await self.store.get_response(job.owner, job.response_id)).status
        except (ResponseMissing, StoreUnavailable):
            return
        if status in ("completed", "incomplete", "failed"):
            self._webhooks.send(f"response.{status}", job.response_id)  # type: ignore[arg-type]

    async def _turn(self, job: BackgroundJob) -> None:
        from convostack.responses.sealing import SealBroken
        from convostack.responses.service import error_object

        try:
            raw = self._service.sealer.open(job.request.decode(), PURPOSE)
        except SealBroken:
            log.error("background response %s: sealed by another key", job.response_id)
            await self._fail(job, OTHER_KEY)
            return
        try:
            body = ResponseCreate.model_validate(raw)
            turn = await self._service.prepare(
                job.owner, body, background=True, identity=(job.response_id, job.created_at)
            )
        except Exception as exc:  # the conversation was deleted meanwhile, the model went
            await self._fail(job, error_object(exc))
            return
        turn.claim = _Claim(self, job)
        started = orjson.dumps(turn.envelope("in_progress", []))
        heartbeat = asyncio.create_task(self._heartbeat(job, started, asyncio.current_task()))
        try:
            if job.streamed:
                await self._stream(job, self._service.stream(turn))
            else:
                await self._service.run(turn)
        except Exception:
            pass  # the service kept the failure (or the claim was lost: nothing to keep)
        finally:
            heartbeat.cancel()

    async def _stream(self, job: BackgroundJob, events: AsyncIterator[Event]) -> None:
        writer = _EventWriter(self.store, job.response_id, 1,
                              lambda: self.signals.notify(job.response_id))  # fmt: skip
        first = True
        try:
            async for event in events:
                if first:  # response.created: stored when it was queued, as number 0
                    first = False
                    continue
                writer.add(event)
            await writer.close()
        finally:
            writer.cancel()

    async def _heartbeat(
        self, job: BackgroundJob, started: bytes, turn: asyncio.Task[object] | None
    ) -> None:
        body: bytes | None = started
        while True:
            until = int(time.time()) + self._settings.lease_seconds
            try:
                held = await self.store.renew_response(job.response_id, job.attempts, until, body)
            except StoreUnavailable as exc:
                log.warning("lease of %s not renewed: %s", job.response_id, exc)
                held = True
            if not held and turn is not None:
                turn.cancel()  # cancelled (maybe on another replica), deleted, or retaken
                return
            body = None
            self.signals.notify(job.response_id)
            await asyncio.sleep(self._settings.heartbeat_seconds)

    async def settle(self, job: BackgroundJob, response: JSONDict, *, event: bool = False) -> None:
        """Keeps a response that did not finish, if the claim holds; `event`: its
        stream (if kept) gets its terminal event, there being no turn to send one."""
        terminal = None
        if event and job.streamed:
            terminal = orjson.dumps({"type": "response.failed", "response": response})
        try:
            await self.store.settle_response(
                Settle(job.response_id, response["status"], orjson.dumps(response), RUNNING,
                       job.attempts, terminal),
                int(time.time()),
            )  # fmt: skip
        except StoreUnavailable as exc:
            log.warning("%s background response %s not kept: %s", response["status"],
                        job.response_id, exc)  # fmt: skip
        self.signals.notify(job.response_id)

    async def _fail(self, job: BackgroundJob, error: JSONDict) -> None:
        await self.settle(job, restatused(job.body, "failed", error), event=True)
