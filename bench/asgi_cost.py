"""The app's own CPU cost per call, without sockets: the ASGI app driven in-process,
one call at a time, timed with the process's CPU clock (all its threads; other processes
on a shared machine disturb it far less than wall-clock throughput). What it leaves out: uvicorn's
HTTP parsing and socket writes, and the kernel. For a turn it includes our side of the
call to the fake upstream (aiohttp over loopback), not the upstream's own work.

    python bench/asgi_cost.py [--calls 2000] [--observe metrics,tracing,access_log]

`--observe` turns on what an operator may turn on, to measure its cost: Prometheus
metrics, tracing (every span built and batched to an exporter that drops them, so the
SDK's export thread is counted but no network), the access log (written to a file).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from common import (
    JSONDict,
    emit,
    exit_on_sigterm,
    fake_upstream,
    free_port,
    load_average,
    log,
    scratch_dir,
)

from convostack.app import create_app
from convostack.config import Config
from convostack.observability.metrics import Metrics
from convostack.observability.telemetry import Telemetry
from convostack.observability.tracing import Tracing
from convostack.stack import Stack


async def _call(app: Any, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": raw_path, "raw_path": raw_path.encode(),
        "query_string": query.encode(), "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2), "state": {},
    }  # fmt: skip
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def _measure(
    name: str, calls: int, make: Callable[[int], Awaitable[tuple[int, bytes]]]
) -> JSONDict:
    for n in range(min(50, calls)):  # warm-up
        await make(n)
    cpu, wall = time.process_time(), time.perf_counter()
    failures = 0
    for n in range(calls):
        status, _ = await make(n)
        failures += status >= 300
    cpu_us = (time.process_time() - cpu) * 1e6 / calls
    wall_us = (time.perf_counter() - wall) * 1e6 / calls
    log(f"  {name}: {cpu_us:.1f} us CPU, {wall_us:.1f} us wall per call, {failures} failed")
    return {"cpu_us": round(cpu_us, 1), "wall_us": round(wall_us, 1), "failures": failures}


def _app(upstream: str, home: Path, observe: set[str]) -> Any:
    config = Config(
        home=home, db=f"sqlite:///{home / 'cost.db'}", upstream=upstream,
        metrics="metrics" in observe, access_log="access_log" in observe,
    )  # fmt: skip
    if "access_log" in observe:
        handler = logging.FileHandler(home / "access.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        access = logging.getLogger("convostack.access")
        access.addHandler(handler)
        access.setLevel(logging.INFO)
    tracing = None
    if "tracing" in observe:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class Dropping(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Dropping()))
        tracing = Tracing(provider)
    telemetry = Telemetry(Metrics() if config.metrics else None, tracing)
    return create_app(config, Stack(config, telemetry=telemetry))


async def run(upstream: str, calls: int, home: Path, observe: set[str], only: set[str]) -> JSONDict:
    app = _app(upstream, home, observe)
    out: JSONDict = {}

    async def measure(
        name: str, count: int, make: Callable[[int], Awaitable[tuple[int, bytes]]]
    ) -> JSONDict:
        return await _measure(name, count, make) if not only or name in only else {}

    async with app.lifespan():

        async def post(path: str, body: Any) -> tuple[int, bytes]:
            return await _call(app, "POST", path, json.dumps(body).encode())

        conversations = []
        for _ in range(calls):
            conversations.append(json.loads((await post("/v1/conversations", {}))[1])["id"])
        item = {"items": [{"type": "message", "role": "user", "content": "hello there"}]}
        out["items.create"] = await measure(
            "items.create", calls,
            lambda n: post(f"/v1/conversations/{conversations[n % 100]}/items", item),
        )  # fmt: skip

        def page(n: int) -> str:
            return f"/v1/conversations/{conversations[n % 100]}/items?limit=20"

        out["items.list"] = await measure("items.list", calls, lambda n: _call(app, "GET", page(n)))
        out["conversations.retrieve"] = await measure(
            "conversations.retrieve", calls,
            lambda n: _call(app, "GET", f"/v1/conversations/{conversations[n]}"),
        )  # fmt: skip
        turns = max(1, calls // 4)
        out["turn"] = await measure(
            "turn", turns,
            lambda n: post("/v1/responses", {"model": "fake-model", "input": "hello",
                                             "conversation": conversations[100 + n % 100]}),
        )  # fmt: skip
        out["turn.streamed"] = await measure(
            "turn.streamed", turns,
            lambda n: post("/v1/responses", {"model": "fake-model", "input": "hello",
                                             "stream": True,
                                             "conversation": conversations[100 + n % 100]}),
        )  # fmt: skip
        out["health"] = await measure("health", calls, lambda n: _call(app, "GET", "/v1/health"))
    return {name: figures for name, figures in out.items() if figures}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--only", default="", help="comma-separated figures to measure")
    parser.add_argument(
        "--observe", default="", help="comma-separated: metrics, tracing, access_log"
    )
    args = parser.parse_args(argv)
    observe = {part for part in args.observe.split(",") if part}
    only = {part for part in args.only.split(",") if part}
    exit_on_sigterm()
    with scratch_dir("convostack-cost-") as work:
        port = free_port()
        upstream = fake_upstream(port, work / "logs")
        try:
            import uvloop

            home = Path(tempfile.mkdtemp(dir=work))
            result = uvloop.run(run(f"http://127.0.0.1:{port}/v1", args.calls, home, observe, only))
        finally:
            upstream.stop()
    emit({"benchmark": "asgi_cost", "load": load_average(), "calls": args.calls,
          "observe": sorted(observe), **result})  # fmt: skip


if __name__ == "__main__":
    main()
