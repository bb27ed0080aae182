"""Running the app under uvicorn (uvloop + httptools), with one clear line at start; with
`workers` above one, under the supervisor of workers.py."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from collections.abc import Callable
from types import FrameType

import uvicorn
import uvloop

from convostack.app import create_app
from convostack.config import Config
from convostack.connections import LimitedConfig, raise_file_limit
from convostack.observability.metrics import serve_on_port
from convostack.stack import Stack
from convostack.storage import redacted_url

log = logging.getLogger("convostack")


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]):
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_started()


def announce(config: Config, workers: int = 1) -> None:
    log.info(
        "convostack serving at %s (database %s%s)",
        config.base_url,
        redacted_url(config.database_url),
        f", {workers} workers" if workers > 1 else "",
    )


def run(config: Config) -> None:
    """Serve until SIGINT or SIGTERM. A stack that cannot start (a database out of reach)
    raises StartupError before anything listens, for the caller to report in one line."""
    if config.workers > 1:
        from convostack.workers import supervise

        supervise(config)
    else:
        serve(config, None, lambda: announce(config))
    log.info("convostack stopped")


def serve(
    config: Config, sockets: list[socket.socket] | None, on_started: Callable[[], None]
) -> None:
    """One process serving: on `sockets` if given (a worker's), else on config's port."""
    # The stack is started here rather than by uvicorn's lifespan events, which would
    # report such a failure as a traceback and more lines of its own. It runs on the
    # loop that then serves: the stores' connections belong to that loop.
    stack = Stack(config)
    app = create_app(config, stack)
    metrics = stack.telemetry.metrics
    if metrics is not None and config.metrics_port is not None and sockets is None:
        # One process: it serves its own counts (a worker's are served by its supervisor).
        serve_on_port(config.host, config.metrics_port, metrics.registry())
    limits = config.connection_limits
    raise_file_limit(limits)
    server_config = LimitedConfig(
        app,
        limits,
        host=config.host,
        port=config.port,
        loop="uvloop",
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        # Nothing here reads the client's address, so X-Forwarded-* need no rewriting:
        # one ASGI layer less on every request.
        proxy_headers=False,
        timeout_graceful_shutdown=config.shutdown_grace_seconds,
        timeout_keep_alive=config.keep_alive_timeout_seconds,
    )
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(stack.start())
        settle_heap()
        # uvicorn re-raises the stop signal once it has shut down, which would end the
        # process with "killed by SIGTERM"; a stop we asked for is a clean exit, code 0.
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop_signal, _already_stopping)
        try:
            runner.run(_Server(server_config, on_started).serve(sockets))
        finally:
            runner.run(stack.close())


def settle_heap() -> None:
    """Once started: what start-up made (modules, schemas, the app) lives as long as the
    process, so the collector stops scanning it (`gc.freeze`): a full collection then
    walks only what serving made since, and stays short (it walked everything, 40-65 ms
    here, a stall every request waiting at that moment paid). No collection first: it
    would delay the first request by 15-30 ms and find about 20 unreachable objects."""
    gc.freeze()


def _already_stopping(signum: int, frame: FrameType | None) -> None:
    log.debug("signal %d received after shutdown; exiting", signum)
