"""A thread that owns one sqlite3 connection and runs queued operations in batches.

Why a thread per connection: sqlite3 calls block, and a blocked event loop stalls every
request. Why batches: under load many requests are queued at once; the writer runs all
of them in ONE transaction (each in its own savepoint, so one failure does not undo the
others) and pays for one commit, and both workers hand results back to the event loop
with one wake-up per batch instead of one per request.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], Any]

_STOP = object()
# Enough to amortise a commit, small enough that one batch never holds the lock for long.
MAX_BATCH = 256


class _Job:
    __slots__ = ("future", "loop", "operation")

    def __init__(
        self, operation: Operation, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]
    ):
        self.operation = operation
        self.loop = loop
        self.future = future


def _settle(results: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, error in results:
        if future.done():  # the awaiting request was cancelled; nobody wants the result
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)


class ConnectionWorker:
    """Runs operations on its connection, in its own thread, a batch at a time."""

    def __init__(self, name: str, connect: Callable[[], sqlite3.Connection], *, writer: bool):
        self._connect = connect
        self._writer = writer
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            raise self._start_error

    async def run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(operation, loop, future))
        return await future

    async def stop(self) -> None:
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            self._start_error = exc
            self._started.set()
            return
        self._started.set()
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch: list[_Job] = [first]
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        job = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if job is _STOP:
                        stop = True
                        break
                    batch.append(job)
                self._run_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE" if self._writer else "BEGIN")
            for job in batch:
                results.append((job.future, *self._run_one(conn, job)))
            conn.execute("COMMIT")
        except BaseException as exc:  # the commit (or BEGIN) failed: nothing was written
            log.warning("sqlite batch of %d failed: %s", len(batch), exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            results = [(job.future, None, exc) for job in batch]
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for job, result in zip(batch, results, strict=True):
            by_loop.setdefault(job.loop, []).append(result)
        for loop, settled in by_loop.items():
            if not loop.is_closed():
                loop.call_soon_threadsafe(_settle, settled)

    def _run_one(self, conn: sqlite3.Connection, job: _Job) -> tuple[Any, BaseException | None]:
        if not self._writer:
            try:
                return job.operation(conn), None
            except Exception as exc:
                return None, exc
        conn.execute("SAVEPOINT op")
        try:
            value = job.operation(conn)
        except Exception as exc:
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
            return None, exc
        conn.execute("RELEASE op")
        return value, None
