"""A 20-tool-call agent loop over WebSocket mode against HTTP streaming.

`convostack serve` (SQLite) on the instant fake upstream; one sequential client, the
stock `openai` package. One loop: the model calls the client-side function `shell`
(`call shell x20`), the client sends its `function_call_output` back, and so on until
the model answers: 21 responses, 20 tool calls. Three ways, each `--samples` loops:

- `ws`: one `client.responses.connect()` connection, `store: false`, each turn naming
  the previous one (`previous_response_id`, connection-local state);
- `http_chain`: `responses.create(stream=True)`, stored responses, `previous_response_id`;
- `http_stateless`: `responses.create(stream=True)`, `store: false`, the whole history
  sent back each turn (what a stateless client does over HTTP).

Per round (one response): wall time, and the server's CPU (user + system of its
process). Medians over loops.

    python bench/ws_rounds.py [--samples 10]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import openai
from common import (
    JSONDict,
    convostack_serve,
    emit,
    exit_on_sigterm,
    fake_upstream,
    free_port,
    load_average,
    log,
    scratch_dir,
    wait_healthy,
)

CALLS = 20
MODEL = "fake-model"
SHELL: Any = {
    "type": "function", "name": "shell", "description": "Run a command",
    "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
}  # fmt: skip
FIRST = f"call shell x{CALLS}"


def _output(call: Any) -> Any:
    return {"type": "function_call_output", "call_id": call.call_id, "output": "ok"}


def _calls(response: Any) -> list[Any]:
    return [item for item in response.output if item.type == "function_call"]


def ws_loop(client: openai.OpenAI) -> int:
    turns = 0
    with client.responses.connect() as connection:
        connection.response.create(model=MODEL, input=FIRST, tools=[SHELL], store=False)
        while True:
            response = None
            for event in connection:
                if event.type in ("response.completed", "response.failed", "error"):
                    response = getattr(event, "response", None)
                    break
            if response is None or response.status != "completed":
                raise RuntimeError(f"WebSocket turn failed: {event}")
            turns += 1
            calls = _calls(response)
            if not calls:
                return turns
            connection.response.create(model=MODEL, tools=[SHELL], store=False,
                                       previous_response_id=response.id,
                                       input=[_output(c) for c in calls])  # fmt: skip


def _streamed(client: openai.OpenAI, **body: Any) -> Any:
    final = None
    for event in client.responses.create(model=MODEL, tools=[SHELL], stream=True, **body):
        if event.type in ("response.completed", "response.failed"):
            final = event.response
    if final is None or final.status != "completed":
        raise RuntimeError(f"HTTP turn failed: {final}")
    return final


def http_chain_loop(client: openai.OpenAI) -> int:
    response = _streamed(client, input=FIRST)
    turns = 1
    while calls := _calls(response):
        response = _streamed(client, previous_response_id=response.id,
                             input=[_output(c) for c in calls])  # fmt: skip
        turns += 1
    return turns


def http_stateless_loop(client: openai.OpenAI) -> int:
    history: list[Any] = [{"role": "user", "content": FIRST}]
    response = _streamed(client, input=history, store=False)
    turns = 1
    while calls := _calls(response):
        history += [item.model_dump(exclude_none=True) for item in response.output]
        history += [_output(c) for c in calls]
        response = _streamed(client, input=history, store=False)
        turns += 1
    return turns


Loop = Callable[[openai.OpenAI], int]


def _measure(
    name: str, loop: Loop, client: openai.OpenAI, cpu: Callable[[], float], samples: int
) -> JSONDict:
    log(f"{name}: {samples} loops of {CALLS} tool calls")
    loop(client)  # warm-up
    times, cpus = [], []
    for _ in range(samples):
        cpu_before, started = cpu(), time.perf_counter()
        turns = loop(client)
        elapsed, used = time.perf_counter() - started, cpu() - cpu_before
        if turns != CALLS + 1:
            raise RuntimeError(f"{name}: {turns} responses, expected {CALLS + 1}")
        times.append(elapsed / turns)
        cpus.append(used / turns)
    return {
        "ms_per_round": round(statistics.median(times) * 1000, 3),
        "server_cpu_ms_per_round": round(statistics.median(cpus) * 1000, 3),
        "loop_ms": round(statistics.median(times) * 1000 * (CALLS + 1), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--samples", type=int, default=10)
    args = parser.parse_args()
    exit_on_sigterm()
    with scratch_dir("bench-ws-") as home:
        upstream_port, port = free_port(), free_port()
        upstream = fake_upstream(upstream_port, home)
        server = convostack_serve(port, home, f"http://127.0.0.1:{upstream_port}/v1", home)
        try:
            wait_healthy(server, f"http://127.0.0.1:{port}/v1/health")
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k",
                                   max_retries=0)  # fmt: skip
            load = load_average()
            results = {
                name: _measure(name, loop, client, server.cpu_s, args.samples)
                for name, loop in (("ws", ws_loop), ("http_chain", http_chain_loop),
                                   ("http_stateless", http_stateless_loop))
            }  # fmt: skip
        finally:
            server.stop()
            upstream.stop()
    ws = results["ws"]
    emit({
        "benchmark": "ws_rounds",
        "load_average": [load, load_average()],
        "tool_calls": CALLS,
        **results,
        "ws_gain_time_vs_http_chain": round(
            results["http_chain"]["ms_per_round"] / ws["ms_per_round"], 2),
        "ws_gain_cpu_vs_http_chain": round(
            results["http_chain"]["server_cpu_ms_per_round"] / ws["server_cpu_ms_per_round"], 2),
        "ws_gain_time_vs_http_stateless": round(
            results["http_stateless"]["ms_per_round"] / ws["ms_per_round"], 2),
    })  # fmt: skip


if __name__ == "__main__":
    main()
