"""One shape for the work a process takes from the database queue (files to ingest,
background responses): a task that claims a job, runs it in a task of its own (up to
`concurrency` at once), and when there is none waits for a wake-up (work queued by this
process: taken at once) or the poll interval (work queued by another replica).

What a claim is (a lease set with FOR UPDATE SKIP LOCKED on PostgreSQL, a single UPDATE
... RETURNING on SQLite) is the store's; what a job does is its handler's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

from convostack.storage.base import StoreUnavailable

log = logging.getLogger(__name__)
J = TypeVar("J")


class QueueWorker(Generic[J]):
    def __init__(
        self,
        name: str,
        claim: Callable[[], Awaitable[J | None]],
        handle: Callable[[J], Coroutine[Any, Any, None]],
        key: Callable[[J], str],
        *,
        poll_seconds: float,
        concurrency: int = 1,
        idle: Callable[[], Awaitable[None]] | None = None,
    ):
        """`key` names a job among the running ones; `idle` runs when the queue is empty."""
        self._name = name
        self._claim = claim
        self._handle = handle
        self._key = key
        self._poll = poll_seconds
        self._concurrency = concurrency
        self._idle = idle
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None
        self.running: dict[str, tuple[asyncio.Task[None], J]] = {}

    def start(self) -> None:
        if self._concurrency > 0:
            self._task = asyncio.create_task(self._work(), name=self._name)

    def wake(self) -> None:
        self._wakeup.set()

    async def close(self) -> list[J]:
        """Stops taking jobs and cancels the running ones; the jobs that were running."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        running = list(self.running.values())
        for task, _ in running:
            task.cancel()
        for task, _ in running:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return [job for _, job in running]

    async def _work(self) -> None:
        while True:
            await self._slots.acquire()
            self._wakeup.clear()  # before the claim: a wake-up during it is not lost
            job = await self._take()
            if job is None:
                self._slots.release()
                if self._idle is not None:
                    await self._idle()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._poll)
                continue
            key = self._key(job)
            task = asyncio.create_task(self._handle(job), name=f"{self._name}:{key}")
            self.running[key] = (task, job)
            task.add_done_callback(lambda _, key=key: self._done(key))  # type: ignore[misc]

    def _done(self, key: str) -> None:
        self.running.pop(key, None)
        self._slots.release()

    async def _take(self) -> J | None:
        try:
            return await self._claim()
        except StoreUnavailable as exc:
            log.warning("%s paused: %s", self._name, exc)
        except Exception:
            log.exception("%s could not take work", self._name)
        return None
