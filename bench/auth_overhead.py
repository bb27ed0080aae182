"""What API keys cost per request: the auth middleware timed in-process around an ASGI app
that does nothing, and (with --wrk) a spawned server with and without keys under wrk.

The in-process figure is the middleware alone (SHA-256 of the key, a dictionary lookup,
a constant-time comparison, the scope update), free of network and scheduling noise, so
it holds on a busy machine; wrk's end-to-end figures on a shared 2-core machine do not.

    python bench/auth_overhead.py [--requests 200000] [--wrk]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from convostack.auth import ApiKey, AuthMiddleware, KeyTable, hash_key
from convostack.limits import RateLimiter

KEY = "sk-bench-0123456789abcdef0123456789"


async def nothing(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def table(size: int) -> KeyTable:
    entries = [ApiKey(sha256=hash_key(KEY), principal="bench")]
    entries += [ApiKey(sha256=hash_key(f"{KEY}-{n}"), principal=f"p{n}") for n in range(size - 1)]
    return KeyTable(entries)


ROUNDS = 15


async def one_round_us(app: Any, requests: int) -> float:
    headers = [(b"host", b"x"), (b"user-agent", b"OpenAI/Python 3.57.0"),
               (b"authorization", f"Bearer {KEY}".encode())]  # fmt: skip

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    started = time.perf_counter()
    for _ in range(requests):
        scope = {"type": "http", "method": "GET", "path": "/v1/models", "headers": headers}
        await app(scope, receive, send)
    return (time.perf_counter() - started) / requests * 1e6


def in_process(requests: int) -> dict[str, float]:
    """The best of ROUNDS rounds of each variant, the variants interleaved, so that
    other processes on the machine disturb them alike."""
    variants = {
        "no middleware": nothing,
        "keys (3)": AuthMiddleware(nothing, table(3), None),
        "keys (10000)": AuthMiddleware(nothing, table(10_000), None),
        "keys (3) + rate limit": AuthMiddleware(nothing, table(3), RateLimiter(10**9)),
    }
    best = dict.fromkeys(variants, float("inf"))

    async def rounds() -> None:
        for _ in range(ROUNDS):
            for name, app in variants.items():
                best[name] = min(best[name], await one_round_us(app, requests // ROUNDS))

    asyncio.run(rounds())
    return {name: round(value, 3) for name, value in best.items()}


def whole_app(requests: int) -> dict[str, float]:
    """The whole app in-process (routing, a store read, a 404), open and with keys: the
    best of ROUNDS interleaved rounds, in µs per request."""
    from convostack.app import create_app
    from convostack.config import Config

    apps = {}
    for name, keys in (("open", None), ("keys", f"{KEY}=bench")):
        home = Path(tempfile.mkdtemp(prefix="convostack-auth-bench-"))
        settings: dict[str, Any] = {
            "home": home,
            "providers": [],
            "upstream": "http://127.0.0.1:9/v1",
        }
        if keys:
            settings["api_keys"] = keys
        apps[name] = create_app(Config.model_validate(settings))
    path = "/v1/conversations/conv_missing"

    async def measure() -> dict[str, float]:
        headers = [(b"host", b"x"), (b"authorization", f"Bearer {KEY}".encode())]

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            pass

        best = dict.fromkeys(apps, float("inf"))
        async with contextlib.AsyncExitStack() as stack:
            for app in apps.values():
                await stack.enter_async_context(app.lifespan())
            for _ in range(ROUNDS):
                for name, app in apps.items():
                    started = time.perf_counter()
                    for _ in range(requests // ROUNDS):
                        scope = {"type": "http", "asgi": {"version": "3.0"}, "method": "GET",
                                 "scheme": "http", "path": path, "raw_path": path.encode(),
                                 "root_path": "", "query_string": b"", "headers": headers,
                                 "server": ("x", 80), "client": ("c", 1), "state": {}}  # fmt: skip
                        await app(scope, receive, send)
                    elapsed = (time.perf_counter() - started) / (requests // ROUNDS) * 1e6
                    best[name] = min(best[name], elapsed)
        return {name: round(value, 2) for name, value in best.items()}

    return asyncio.run(measure())


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wrk(url: str, key: str | None, seconds: int) -> float:
    argv = ["wrk", "-t2", "-c16", f"-d{seconds}s", url]
    if key:
        argv[1:1] = ["-H", f"Authorization: Bearer {key}"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30).stdout
    line = next(x for x in out.splitlines() if x.startswith("Requests/sec:"))
    return float(line.split()[1])


def end_to_end(seconds: int) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed"}
    results: dict[str, Any] = {}
    for name, keys in (("open", None), ("keys", KEY)):
        home = Path(tempfile.mkdtemp(prefix="convostack-auth-bench-"))
        port = _port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONVOSTACK_")}
        env |= {"CONVOSTACK_HOME": str(home), "CONVOSTACK_LOG_LEVEL": "warning"}
        if keys:
            env["CONVOSTACK_API_KEYS"] = f"{keys}=bench"
        server = subprocess.Popen(
            [sys.executable, "-m", "convostack", "serve", "--port", str(port),
             "--upstream", "http://127.0.0.1:9/v1"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}/v1/conversations/conv_missing"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.05)
            _wrk(url, keys, 2)  # warm-up
            results[name] = {"requests_per_s": _wrk(url, keys, seconds)}
        finally:
            server.terminate()
            server.wait(timeout=30)
            shutil.rmtree(home, ignore_errors=True)
    results["route"] = "GET /v1/conversations/conv_missing (a 404 after a store read)"
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--wrk", action="store_true", help="Also run wrk against a server.")
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the unreachable upstream of whole_app says so
    timings = in_process(args.requests)
    summary: dict[str, Any] = {
        "benchmark": "auth_overhead",
        "per_request_us": timings,
        "middleware_overhead_us": round(timings["keys (3)"] - timings["no middleware"], 3),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    summary["whole_app_us"] = whole_app(args.requests // 10)
    if args.wrk:
        summary["wrk"] = end_to_end(args.seconds)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
