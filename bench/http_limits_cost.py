"""What the HTTP connection limits cost per request: uvicorn's httptools protocol and ours
(convostack.connections), each fed the same keep-alive request head in-process, with a
transport that writes nowhere and an ASGI app that answers at once.

In-process and without sockets, so it holds on a busy machine where wrk's figures do not:
the difference is the per-request code the limits add (a phase check and `loop.time()`
per read, two length checks and one more `loop.time()` per head), nothing else.

    python bench/http_limits_cost.py [--requests 20000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import uvicorn
import uvloop
from common import emit, load_average
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from convostack.connections import ConnectionLimits, GuardedHttpToolsProtocol, LimitedConfig
from convostack.testing.transport import MemoryTransport

# What the openai client sends, about: a dozen headers and a small JSON body.
HEAD = (
    b"POST /v1/conversations/conv_x/items HTTP/1.1\r\nhost: 127.0.0.1:8321\r\n"
    + b"".join(b"x-stainless-h%d: value-%d\r\n" % (n, n) for n in range(10))
    + b"authorization: Bearer sk-abc\r\ncontent-type: application/json\r\n"
    + b"content-length: 2\r\n\r\n{}"
)


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})  # fmt: skip
    await send({"type": "http.response.body", "body": b"{}"})


async def per_request_us(protocol_class: type[HttpToolsProtocol], requests: int) -> float:
    if protocol_class is GuardedHttpToolsProtocol:
        config: uvicorn.Config = LimitedConfig(answer, ConnectionLimits(), log_config=None)
    else:
        config = uvicorn.Config(answer, http="httptools", log_config=None)
    config.load()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(MemoryTransport(keep=False))
    started = time.perf_counter()
    for _ in range(requests):
        protocol.data_received(HEAD)
        await asyncio.sleep(0)  # the request's task runs
        await asyncio.sleep(0)  # and its response completes
    elapsed = time.perf_counter() - started
    protocol.connection_lost(None)
    return elapsed / requests * 1e6


async def measure(requests: int, rounds: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {"uvicorn": [], "convostack": []}
    for _ in range(rounds):  # interleaved, so that load moves both alike
        times["uvicorn"].append(await per_request_us(HttpToolsProtocol, requests))
        times["convostack"].append(await per_request_us(GuardedHttpToolsProtocol, requests))
    best = {name: min(values) for name, values in times.items()}
    return {
        "benchmark": "http_limits_cost",
        "requests_per_round": requests,
        "rounds": rounds,
        "us_per_request_best": {k: round(v, 2) for k, v in best.items()},
        "us_per_request_median": {
            name: round(statistics.median(values), 2) for name, values in times.items()
        },
        "added_us_best": round(best["convostack"] - best["uvicorn"], 2),
        "load": load_average(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    emit(uvloop.run(measure(args.requests, args.rounds)))


if __name__ == "__main__":
    main()
