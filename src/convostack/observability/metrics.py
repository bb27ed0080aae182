"""Prometheus metrics (`prometheus-client`): what is counted, and how it is exposed.

One `Metrics` per app, on a registry of its own (several apps in one test process do not
mix their counts). With `serve --workers N` each worker counts into files of its own
under `<home>/prometheus/` (prometheus-client's multiprocess mode) and a scrape, answered
by any worker, adds them all up; the supervisor empties that folder before it starts
the workers, so counts start at zero with the server.

prometheus-client reads PROMETHEUS_MULTIPROC_DIR when a metric is created, so the
supervisor sets it before forking; it is imported here lazily for the same reason.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from convostack.observability.hooks import Observer

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds: from a cached read (sub-millisecond) to a long generation (minutes).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)  # fmt: skip
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def multiprocess_dir(home: Path) -> Path:
    return home / "prometheus"


def prepare_multiprocess(home: Path) -> Path:
    """For `--workers N`: an empty folder for the workers' counts, named in the
    environment the workers inherit."""
    folder = multiprocess_dir(home)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


class Metrics(Observer):
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "convostack_requests", "HTTP requests by method, route template and status.",
            ["method", "route", "status"], registry=r,
        )  # fmt: skip
        self.request_seconds = Histogram(
            "convostack_request_duration_seconds",
            "Time from a request's arrival to the end of its response (a stream's last event).",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.turns = Counter(
            "convostack_turns", "Responses turns by model and final status.",
            ["model", "status"], registry=r,
        )  # fmt: skip
        self.tokens = Counter(
            "convostack_tokens", "Tokens by model, direction 'input' or 'output', as the "
            "provider reported them.", ["model", "direction"], registry=r,
        )  # fmt: skip
        self.upstream_seconds = Histogram(
            "convostack_upstream_duration_seconds",
            "Model calls by provider and endpoint (chat, chat_stream, embeddings).",
            ["provider", "endpoint"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.upstream_errors = Counter(
            "convostack_upstream_errors", "Failed model calls by provider, endpoint and "
            "HTTP status (or 'error').", ["provider", "endpoint", "status"], registry=r,
        )  # fmt: skip
        self.store_seconds = Histogram(
            "convostack_store_duration_seconds", "Store calls by operation.",
            ["operation"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.tool_calls = Counter(
            "convostack_tool_calls", "Server-side tool calls by type and status.",
            ["type", "status"], registry=r,
        )  # fmt: skip

    def turn_ended(self, model: str, status: str) -> None:
        self.turns.labels(model, status).inc()

    def tool_called(self, kind: str, status: str) -> None:
        self.tool_calls.labels(kind, status).inc()

    def exposition(self) -> bytes:
        """The text a scrape gets: this process's counts, or every worker's."""
        from prometheus_client import generate_latest

        return generate_latest(scrape_registry(self.registry))


def scrape_registry(own: CollectorRegistry | None = None) -> CollectorRegistry:
    """The registry a scrape reads: every worker's files in multiprocess mode (the
    supervisor, which counts nothing, passes no registry of its own), else `own`."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    folder = os.environ.get(MULTIPROC_ENV)
    if folder is None and own is not None:
        return own
    if folder is None:
        raise RuntimeError(f"no registry to scrape: {MULTIPROC_ENV} is not set")
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
    return registry


def serve_on_port(host: str, port: int, registry: CollectorRegistry) -> None:
    """/metrics on a port of its own (setting metrics_port), from a daemon thread."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=registry)
