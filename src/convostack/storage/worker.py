"""Where the sqlite3 calls run: on the event loop's own thread, or in a worker thread.

`LoopConnection` is the fast path. Reads run at once on the loop's thread (each is one
or two indexed queries: microseconds, less than a hop to a thread and back). Writes are
queued, and all those queued during one turn of the loop run in ONE transaction (each in
its own savepoint, so one failure does not undo the others) at the start of the next
turn: many requests share one commit, and nothing crosses a thread. Its connection never
blocks on a lock: a batch that finds the write lock taken by another process is tried
again on the loop for a few milliseconds (`_when_free`), then handed, like a read that
finds the database busy, to a `ConnectionWorker`, whose thread may wait up to
WRITER_WAIT_SECONDS without stalling the loop. WAL checkpoints (the part of a commit
that writes the database file and syncs it) run on the `Checkpointer`'s own thread.

`ConnectionWorker` is a thread that owns one connection and runs queued operations a
batch at a time (in one transaction for a writer), handing results back to the event
loop with one wake-up per batch. It serves long reads (a conversation's whole history,
a response chain) and the fallbacks above.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], Any]

_STOP = object()
# Enough to amortise a commit, small enough that one batch never holds the lock for long.
MAX_BATCH = 256
# How long the writer thread waits for a lock held by another process, and how often it
# tries meanwhile (from 0.2 ms, doubling to 2 ms).
WRITER_WAIT_SECONDS = 5.0
RETRY_FIRST_SECONDS = 0.0002
RETRY_MAX_SECONDS = 0.002


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

    def submit(self, job: _Job) -> None:
        """Queue a job made elsewhere; its result goes to its own future and loop."""
        self._queue.put(job)

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
        if self._writer:
            results = _write_when_free(conn, batch)
        else:
            results = run_batch(conn, batch, writer=False, raise_busy=False)
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for job, result in zip(batch, results, strict=True):
            by_loop.setdefault(job.loop, []).append(result)
        for loop, settled in by_loop.items():
            if not loop.is_closed():
                loop.call_soon_threadsafe(_settle, settled)


Result = tuple[asyncio.Future[Any], Any, BaseException | None]


def run_batch(
    conn: sqlite3.Connection, batch: list[_Job], *, writer: bool, raise_busy: bool
) -> list[Result]:
    """Run a batch in one transaction: a writer's jobs each in a savepoint (unless alone,
    when the transaction itself is one), so that a failed job undoes only its own writes.
    If BEGIN or COMMIT fails, nothing was written and every job gets that error; or, with
    `raise_busy`, a busy database is raised for the caller to try elsewhere."""
    results: list[Result] = []
    try:
        conn.execute("BEGIN IMMEDIATE" if writer else "BEGIN")
        if not writer:
            for job in batch:
                results.append((job.future, *_run_read(conn, job)))
        elif len(batch) == 1:
            job = batch[0]
            value, error = _run_read(conn, job)
            results.append((job.future, value, error))
            if error is not None:
                conn.execute("ROLLBACK")
        else:
            for job in batch:
                results.append((job.future, *_run_write(conn, job)))
        if conn.in_transaction:
            conn.execute("COMMIT")
    except BaseException as exc:  # the commit (or BEGIN) failed: nothing was written
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if raise_busy and _is_busy(exc):
            raise
        log.warning("sqlite batch of %d failed: %s", len(batch), exc)
        results = [(job.future, None, exc) for job in batch]
    return results


def _write_when_free(conn: sqlite3.Connection, batch: list[_Job]) -> list[Result]:
    """Run a writer's batch, waiting for another process's write lock in short sleeps.

    SQLite's own busy handler sleeps longer at each try (up to 100 ms), while the event
    loop of another process (`serve --workers`) takes the lock again at every turn: a
    waiter that sleeps long keeps missing the moments it is free (a p99 of 690 ms was
    measured for items.create with two workers). The connection waits 0 ms itself."""
    deadline = time.monotonic() + WRITER_WAIT_SECONDS
    pause = RETRY_FIRST_SECONDS
    while True:
        try:
            return run_batch(conn, batch, writer=True, raise_busy=time.monotonic() < deadline)
        except sqlite3.OperationalError:  # busy, and there is time left to wait
            time.sleep(pause)
            pause = min(pause * 2, RETRY_MAX_SECONDS)


def _run_read(conn: sqlite3.Connection, job: _Job) -> tuple[Any, BaseException | None]:
    try:
        return job.operation(conn), None
    except Exception as exc:
        return None, exc


def _run_write(conn: sqlite3.Connection, job: _Job) -> tuple[Any, BaseException | None]:
    conn.execute("SAVEPOINT op")
    try:
        value = job.operation(conn)
    except Exception as exc:
        conn.execute("ROLLBACK TO op")
        conn.execute("RELEASE op")
        return None, exc
    conn.execute("RELEASE op")
    return value, None


def _is_busy(exc: BaseException) -> bool:
    """The database is locked by another connection (another process, or a checkpoint)."""
    return isinstance(exc, sqlite3.OperationalError) and getattr(exc, "sqlite_errorcode", None) in (
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
    )


class LoopConnection:
    """One connection used on the event loop's thread: reads at once, writes batched per
    turn of the loop (see the module's docstring). Several loops may share it (the app
    in a test's portal thread, and the test's own loop): a lock keeps their calls apart,
    and each loop has its own queue."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        fallback_writer: ConnectionWorker,
        fallback_reader: ConnectionWorker,
        checkpointer: Checkpointer,
        wal_path: str,
    ):
        self._connect = connect
        self._wal_path = wal_path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._pending: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        # Since when each loop's writes have found the database busy (see _flush).
        self._busy_since: dict[asyncio.AbstractEventLoop, float] = {}
        self._writer = fallback_writer
        self._reader = fallback_reader
        self._checkpointer = checkpointer
        self._commits = 0

    def open(self) -> None:
        self._conn = self._connect()

    def close(self) -> None:
        if self._conn is not None:
            with self._lock:
                self._conn.close()
                self._conn = None

    async def read(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise RuntimeError("the sqlite store is not started")
        try:
            with self._lock:
                return operation(conn)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
        return await self._reader.run(operation)

    def write(self, operation: Callable[[sqlite3.Connection], T]) -> Coroutine[Any, Any, T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._flush, loop)
        pending.append(_Job(operation, loop, future))
        return _wait(future)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._pending.pop(loop, [])
        if len(batch) > MAX_BATCH:  # the rest go in the next turn of the loop
            self._pending[loop] = batch[MAX_BATCH:]
            batch = batch[:MAX_BATCH]
            loop.call_soon(self._flush, loop)
        conn = self._conn
        if conn is None:
            error = RuntimeError("the sqlite store is closed")
            _settle([(job.future, None, error) for job in batch])
            return
        try:
            with self._lock:
                results = run_batch(conn, batch, writer=True, raise_busy=True)
        except sqlite3.OperationalError:  # busy: another process holds the write lock
            self._when_free(loop, batch)
            return
        self._busy_since.pop(loop, None)
        _settle(results)
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY_COMMITS == 0:
            self._checkpointer.request()
            if self._wal_bytes() > OVERDUE_BYTES:
                self._truncate_wal(conn)

    def _when_free(self, loop: asyncio.AbstractEventLoop, batch: list[_Job]) -> None:
        """Try a batch that found the write lock taken again shortly, on the loop, with
        the writes queued meanwhile (another worker of `serve --workers` holds the lock
        for a commit's time: a hop to the writer thread and back costs more, and the
        batches grow while they wait). Held longer (a checkpoint, another program), the
        writer thread takes over and waits without stalling anything."""
        busy_since = self._busy_since.setdefault(loop, loop.time())
        if loop.time() - busy_since > LOOP_RETRY_SECONDS:
            del self._busy_since[loop]
            for job in batch:
                self._writer.submit(job)
            return
        queued = self._pending.get(loop)
        if queued is None:
            self._pending[loop] = batch
            loop.call_later(LOOP_RETRY_DELAY_SECONDS, self._flush, loop)
        else:  # a flush is already due for these; the older writes go first
            queued[:0] = batch

    def _wal_bytes(self) -> int:
        try:
            return os.stat(self._wal_path).st_size
        except OSError:
            return 0

    def _truncate_wal(self, conn: sqlite3.Connection) -> None:
        """Checkpoint and truncate an overgrown WAL from the loop (see OVERDUE_BYTES).

        SQLite answers busy at once, without waiting, while another connection is
        checkpointing: so first wait for the checkpointer's own pass to end."""
        if not self._checkpointer.running.acquire(timeout=OVERDUE_WAIT_MS / 1000):
            return
        with self._lock:
            conn.execute(f"PRAGMA busy_timeout = {OVERDUE_WAIT_MS}")
            try:
                busy, frames, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                log.warning("sqlite WAL past %d bytes: checkpointed on the loop (%d frames%s)",
                            OVERDUE_BYTES, frames, ", busy" if busy else "")  # fmt: skip
            except sqlite3.Error as exc:
                log.warning("sqlite checkpoint failed: %s", exc)
            finally:
                conn.execute("PRAGMA busy_timeout = 0")
                self._checkpointer.running.release()


async def _wait(future: asyncio.Future[T]) -> T:
    return await future


# A batch that finds the write lock taken is tried again on the loop after this delay, for
# at most this long, before the writer thread takes it (LoopConnection._when_free).
LOOP_RETRY_DELAY_SECONDS = 0.0005
LOOP_RETRY_SECONDS = 0.02

# The loop's connection never checkpoints by itself; after this many commits it asks the
# Checkpointer to (about every 4 MB of WAL at a few pages a commit).
CHECKPOINT_EVERY_COMMITS = 64


# A WAL longer than this many frames (4 KiB pages: 64 MiB) is rewound by a RESTART
# checkpoint; below it, PASSIVE checkpoints keep up without ever blocking a writer. A
# longer WAL means fewer rewinds, and more of a page's rewrites land in one frame slot
# already copied: items.create needed 137-155 us of CPU at 64 MiB against 162-173 at
# 16 MiB (three alternating runs each, bench/throughput.py, load about 1).
RESTART_FRAMES = 16384
# When writes outrun the checkpointer anyway (its thread starved of CPU or of the GIL),
# the loop itself truncates a WAL file grown past this, waiting at most OVERDUE_WAIT_MS
# for the lock: a stall of the loop, but the WAL is bounded whatever happens.
OVERDUE_BYTES = 128 * 2**20
OVERDUE_WAIT_MS = 2000


class Checkpointer:
    """Copies the WAL into the database file on its own thread, when asked.

    A PASSIVE checkpoint never blocks readers or the writer, but under a steady stream of
    writes it never catches up with the last frame either, and SQLite only rewinds the WAL
    once a checkpoint has: the WAL would grow without bound. So when it passes
    RESTART_FRAMES, a RESTART checkpoint takes the write lock for the short time it needs
    to copy the last frames (most are copied already); the loop's writes meanwhile find
    the database busy and go to the writer thread, which waits for the lock.

    RESTART also syncs the database file while it holds the lock, and that sync flushes
    every page the PASSIVE passes wrote since the last one: so the database file is
    synced first, from here, with no lock held, and the RESTART's own sync finds little
    left (`_rewind`). The extra sync adds durability, takes none away.
    """

    def __init__(self, name: str, connect: Callable[[], sqlite3.Connection], database: str):
        self._connect = connect
        self._database = database
        self._database_file: _SharedFile | None = None
        self._wanted = threading.Event()
        self._stopping = False
        # Held while a checkpoint runs here (the loop's own checkpoint waits for it).
        self.running = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread (the database file exists by now: the writer made it)."""
        self._database_file = _SharedFile.open(self._database)
        self._thread.start()

    def request(self) -> None:
        self._wanted.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wanted.set()
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        conn = self._connect()
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._stopping:
                    return
                try:
                    with self.running:
                        _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                        if frames > RESTART_FRAMES:
                            self._rewind(conn)
                except sqlite3.Error as exc:
                    log.warning("sqlite checkpoint failed: %s", exc)
        finally:
            conn.close()

    def _rewind(self, conn: sqlite3.Connection) -> None:
        """Sync the database file without a lock, copy what was written meanwhile, then
        RESTART, which then holds the write lock a few ms instead of 7-30 (RESULTS.md)."""
        self._sync_database()
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()

    def _sync_database(self) -> None:
        if self._database_file is None:
            return
        try:
            _sync_data(self._database_file.fd)
        except OSError as exc:  # only an optimisation: the RESTART syncs what it needs
            log.debug("sqlite database file not synced before a checkpoint: %s", exc)

    def close_file(self) -> None:
        """Let go of the database file's descriptor, once this store's connections are
        closed (see _SharedFile)."""
        if self._database_file is not None:
            self._database_file.release()
            self._database_file = None


class _SharedFile:
    """One read-only descriptor of a database file per process, shared by the stores on
    it and closed when the last lets go: closing any descriptor of a file drops all the
    process's POSIX locks on it, SQLite's own included, so it must never close while
    another store of this process still has connections to the file."""

    _open: ClassVar[dict[tuple[int, int], _SharedFile]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, key: tuple[int, int], fd: int):
        self.key = key
        self.fd = fd
        self.users = 1

    @classmethod
    def open(cls, path: str) -> _SharedFile | None:
        try:
            stat = os.stat(path)
            key = (stat.st_dev, stat.st_ino)
            with cls._lock:
                shared = cls._open.get(key)
                if shared is not None:
                    shared.users += 1
                    return shared
                shared = cls._open[key] = cls(key, os.open(path, os.O_RDONLY))
                return shared
        except OSError as exc:
            log.debug("sqlite database file not opened for syncs: %s", exc)
            return None

    def release(self) -> None:
        with self._lock:
            self.users -= 1
            if self.users == 0:
                del self._open[self.key]
                os.close(self.fd)


_sync_data: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)
