"""`convostack serve --workers N`: N processes serving one listening socket.

Each worker is a whole server (event loop, store connections, providers) forked from
this supervisor once it has bound the port and checked the database (so the
migrations run in one process, and a database out of reach is still one line). The
kernel hands each new connection to one worker. Workers share nothing but the database:
SQLite serialises their writes with its lock (WAL lets reads go on meanwhile), PostgreSQL
with its own, exactly as for replicas.

The supervisor does nothing else: a stop signal is passed on to every worker (each
finishes its requests, as a single server does); a worker that dies once serving is
replaced, one that dies before (it would again) stops the others and fails the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import select
import signal
import socket
import struct
import sys
from types import FrameType
from typing import NoReturn

from prometheus_client import CollectorRegistry

from convostack.config import Config
from convostack.observability.metrics import (
    files_collector,
    multiprocess_dir,
    prepare_multiprocess,
    serve_on_port,
)
from convostack.observability.telemetry import Telemetry
from convostack.stack import Stack, StartupError

log = logging.getLogger("convostack")

LISTEN_BACKLOG = 2048
_PID = struct.Struct("=i")
_PR_SET_PDEATHSIG = 1


def supervise(config: Config) -> None:
    if config.metrics:
        prepare_multiprocess(config.home)  # the workers' counts, from zero
    with _listen(config.host, config.port) as sock:
        # Only the database is checked: the workers have the telemetry, not this process.
        asyncio.run(Stack(config, telemetry=Telemetry()).check_database())
        if config.metrics and config.metrics_port is not None:
            registry = CollectorRegistry()
            registry.register(files_collector(multiprocess_dir(config.home)))
            serve_on_port(config.host, config.metrics_port, registry)
        _Supervisor(config, sock).run()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(f"could not listen on {host}:{port}: {exc.strerror}.") from exc
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


class _Supervisor:
    def __init__(self, config: Config, sock: socket.socket):
        self._config = config
        self._sock = sock
        self._workers: set[int] = set()
        self._serving: set[int] = set()
        self._stopping = False
        self._failed = False
        # Each worker writes its pid here once it serves (a write this small is atomic).
        self._ready_read, self._ready_write = os.pipe()
        os.set_blocking(self._ready_read, False)

    def run(self) -> None:
        previous = {
            s: signal.signal(s, self._on_stop_signal) for s in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            for _ in range(self._config.workers):
                self._fork()
            if self._wait_ready():
                from convostack.server import announce

                announce(self._config, self._config.workers)
            while self._workers:
                self._reap(os.waitpid(-1, 0))
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            os.close(self._ready_read)
            os.close(self._ready_write)
        if self._failed:
            raise StartupError("a worker failed to start (see above); the server stopped.")

    def _fork(self) -> None:
        pid = os.fork()
        if pid == 0:
            self._be_worker()
        self._workers.add(pid)

    def _be_worker(self) -> NoReturn:
        code = 1
        try:
            # Its own process group: a terminal's Ctrl-C reaches the supervisor only,
            # which passes a single SIGTERM on; and SIGTERM too if the supervisor dies.
            os.setpgid(0, 0)
            _die_with_parent()
            for s in (signal.SIGINT, signal.SIGTERM):
                signal.signal(s, signal.SIG_DFL)
            os.close(self._ready_read)
            from convostack.server import serve

            serve(self._config, [self._sock], self._tell_ready)
            code = 0
        except StartupError as exc:
            log.error("worker %d: %s", os.getpid(), exc)
        except BaseException:
            log.exception("worker %d failed", os.getpid())
        finally:
            logging.shutdown()
            sys.stderr.flush()
            os._exit(code)

    def _tell_ready(self) -> None:
        os.write(self._ready_write, _PID.pack(os.getpid()))

    def _read_ready(self) -> None:
        with contextlib.suppress(BlockingIOError):
            data = os.read(self._ready_read, _PID.size * 256)
            self._serving.update(pid for (pid,) in _PID.iter_unpack(data))

    def _wait_ready(self) -> bool:
        """Until every worker serves (True), or one has ended first (False, all stopped)."""
        while len(self._serving) < self._config.workers and not self._stopping:
            select.select([self._ready_read], [], [], 0.05)
            self._read_ready()
            ended = os.waitpid(-1, os.WNOHANG)
            if ended[0]:
                self._reap(ended)
        return not self._stopping

    def _reap(self, ended: tuple[int, int]) -> None:
        pid, status = ended
        if pid not in self._workers:
            return
        self._workers.discard(pid)
        self._read_ready()
        if self._stopping:
            return
        code = os.waitstatus_to_exitcode(status)
        if pid not in self._serving:
            log.error("worker %d ended while starting (exit %d); stopping", pid, code)
            self._failed = True
            self._stop()
            return
        log.warning("worker %d ended (exit %d); starting another", pid, code)
        self._fork()

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop()

    def _stop(self) -> None:
        """Pass SIGTERM to every worker (again at a second signal: uvicorn then stops
        without waiting for requests to finish)."""
        self._stopping = True
        for pid in list(self._workers):  # a signal may come while the set changes
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker if the supervisor dies (even by SIGKILL)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
