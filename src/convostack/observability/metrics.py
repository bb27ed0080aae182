"""Prometheus metrics: counted in plain dicts on the request path, turned into the
Prometheus text format (by `prometheus-client`) only when scraped.

Why not prometheus-client's own metric objects on the hot path: a labelled counter
increment and a histogram observation cost 1.4 and 1.7 µs here (a label lookup under a
lock, a linear walk over the buckets), several per request, against items.list's 45 µs
whole; a dict increment is 0.1 µs (bench/RESULTS.md, "Metrics and traces").

With `serve --workers N`, each worker writes its counts to `<home>/prometheus/<pid>.json`
(every FLUSH_SECONDS, and when it stops), and a scrape, answered by any worker, adds up
every file after writing its own, so the sum is exact for the worker answering and at
most FLUSH_SECONDS behind for the others. Files of workers that died stay: their counts
still happened. The supervisor empties the folder when the server starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from convostack.observability.hooks import Observer

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

FLUSH_SECONDS = 1.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: from a cached read (sub-millisecond) to a long generation (minutes).
BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
          10.0, 30.0, 60.0, 300.0)  # fmt: skip


@dataclass(frozen=True)
class Family:
    name: str
    help: str
    labels: tuple[str, ...]
    histogram: bool = False


FAMILIES = {
    "requests": Family("convostack_requests", "HTTP requests by method, route template "
                       "and status.", ("method", "route", "status")),
    "request_seconds": Family("convostack_request_duration_seconds", "Time from a request's "
                              "arrival to its response's end (a stream's last event).",
                              ("method", "route"), histogram=True),
    "turns": Family("convostack_turns", "Responses turns by model and final status.",
                    ("model", "status")),
    "tokens": Family("convostack_tokens", "Tokens by model and direction (input, output), "
                     "as the provider reported them.", ("model", "direction")),
    "upstream_seconds": Family("convostack_upstream_duration_seconds", "Model calls by "
                               "provider and endpoint (chat, chat_stream, embeddings).",
                               ("provider", "endpoint"), histogram=True),
    "upstream_errors": Family("convostack_upstream_errors", "Failed model calls by provider, "
                              "endpoint and HTTP status (or 'error').",
                              ("provider", "endpoint", "status")),
    "store_seconds": Family("convostack_store_duration_seconds", "Store calls by operation.",
                            ("operation",), histogram=True),
    "tool_calls": Family("convostack_tool_calls", "Server-side tool calls by type and status.",
                         ("type", "status")),
}  # fmt: skip

# A table's values: a count, or a histogram's bucket counts followed by its sum.
Table = dict[tuple[str, ...], Any]


def _observe(table: Table, key: tuple[str, ...], seconds: float) -> None:
    buckets = table.get(key)
    if buckets is None:
        buckets = table[key] = [0] * (len(BOUNDS) + 1) + [0.0]
    buckets[bisect_left(BOUNDS, seconds)] += 1
    buckets[-1] += seconds


def multiprocess_dir(home: Path) -> Path:
    return home / "prometheus"


def prepare_multiprocess(home: Path) -> None:
    """For `--workers N`, before the workers start: an empty folder for their counts."""
    folder = multiprocess_dir(home)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


class Metrics(Observer):
    def __init__(self, folder: Path | None = None):
        self.tables: dict[str, Table] = {name: {} for name in FAMILIES}
        self._folder = folder
        self._flusher: asyncio.TimerHandle | None = None
        t = self.tables
        self._requests, self._request_seconds = t["requests"], t["request_seconds"]
        self._store_seconds, self._upstream_seconds = t["store_seconds"], t["upstream_seconds"]

    # -- counting (the hot path: dict operations only) ------------------------------

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        self._requests[key] = self._requests.get(key, 0) + 1
        _observe(self._request_seconds, (method, route), seconds)

    def store_call(self, operation: tuple[str], seconds: float) -> None:
        _observe(self._store_seconds, operation, seconds)

    def model_call(self, provider: str, endpoint: str, seconds: float) -> None:
        _observe(self._upstream_seconds, (provider, endpoint), seconds)

    def _count(self, table: str, key: tuple[str, ...], n: int = 1) -> None:
        found = self.tables[table]
        found[key] = found.get(key, 0) + n

    def model_error(self, provider: str, endpoint: str, status: str) -> None:
        self._count("upstream_errors", (provider, endpoint, status))

    def tokens(self, model: str, input_tokens: int, output_tokens: int) -> None:
        if input_tokens:
            self._count("tokens", (model, "input"), input_tokens)
        if output_tokens:
            self._count("tokens", (model, "output"), output_tokens)

    def turn_ended(self, model: str, status: str) -> None:
        self._count("turns", (model, status))

    def tool_called(self, kind: str, status: str) -> None:
        self._count("tool_calls", (kind, status))

    # -- sharing between workers ----------------------------------------------------

    def start(self) -> None:
        if self._folder is not None:
            self._flusher = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._tick)

    def _tick(self) -> None:
        self.save()
        self._flusher = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._tick)

    def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        self.save()

    def save(self) -> None:
        if self._folder is None:
            return
        snapshot = {name: [[*key, value] for key, value in table.items()]
                    for name, table in self.tables.items()}  # fmt: skip
        path = self._folder / f"{os.getpid()}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(orjson.dumps(snapshot))
        temporary.replace(path)  # a reader sees the old file or the new, never half

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        self.save()
        return generate_latest(self.registry())

    def registry(self) -> CollectorRegistry:
        """What a scrape reads: this process's tables, or every worker's files."""
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry()
        if self._folder is None:
            registry.register(_Collector(lambda: self.tables))
        else:
            registry.register(files_collector(self._folder))
        return registry


class _Collector:
    def __init__(self, read: Any):
        self._read = read

    def collect(self) -> Iterator[Metric]:
        return _families(self._read())


def files_collector(folder: Path) -> _Collector:
    """Every worker's counts, summed (the supervisor serves these on metrics_port)."""
    return _Collector(lambda: _read_all(folder))


def _read_all(folder: Path) -> dict[str, Table]:
    total: dict[str, Table] = {name: {} for name in FAMILIES}
    for path in folder.glob("*.json"):
        with contextlib.suppress(OSError, orjson.JSONDecodeError):
            snapshot = orjson.loads(path.read_bytes())
            for name, rows in snapshot.items():
                table = total.get(name)
                if table is None:
                    continue
                for *key, value in rows:
                    _add(table, tuple(key), value)
    return total


def _add(table: Table, key: tuple[str, ...], value: Any) -> None:
    held = table.get(key)
    if held is None:
        table[key] = list(value) if isinstance(value, list) else value
    elif isinstance(held, list):
        table[key] = [a + b for a, b in zip(held, value, strict=True)]
    else:
        table[key] = held + value


def _families(tables: dict[str, Table]) -> Iterator[Metric]:
    from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

    for name, family in FAMILIES.items():
        table = tables[name]
        if family.histogram:
            histogram = HistogramMetricFamily(family.name, family.help, labels=family.labels)
            for key, values in list(table.items()):  # the port's thread reads too
                cumulative, buckets = 0, []
                for bound, count in zip((*BOUNDS, float("inf")), values[:-1], strict=True):
                    cumulative += count
                    buckets.append((_bound(bound), cumulative))
                histogram.add_metric(list(key), buckets, values[-1])
            yield histogram
        else:
            counter = CounterMetricFamily(family.name, family.help, labels=family.labels)
            for key, count in list(table.items()):
                counter.add_metric(list(key), count)
            yield counter


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def serve_on_port(host: str, port: int, registry: CollectorRegistry) -> None:
    """/metrics on a port of its own (setting metrics_port), from a daemon thread."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=registry)
