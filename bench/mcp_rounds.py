"""What the tool loop itself costs per MCP round, with an instant model and tool.

`convostack serve` on the fake upstream, and the SDK's MCP server (convostack.testing.
mcp_server) in this process; one sequential client. Every turn continues one stored
response (`previous_response_id`), which already holds the server's tool list, so no turn
lists tools again. Measured, each `--samples` times:

- `turn_0`: a turn that offers the MCP tools and calls none;
- `turn_5`: a turn of five MCP rounds (model -> tool -> model ... -> answer);
- `client_5`: the same five rounds run by the client itself: a `function` tool, each
  call run through its own MCP session, each result sent back in a new turn;
- `model_call` and `mcp_call`: one fake-upstream chat call and one MCP `tools/call`
  (a warm session), made directly: the two calls a round cannot do without.

The loop's own cost per round is (turn_5 - turn_0) / 5 - (model_call + mcp_call), from
medians; the target is under 2 ms.

    python bench/mcp_rounds.py [--samples 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx2
import orjson
from common import (
    Client,
    JSONDict,
    convostack_serve,
    emit,
    exit_on_sigterm,
    fake_upstream,
    free_port,
    load_average,
    log,
    scratch_dir,
    stats_ms,
    wait_healthy,
)
from mcp import Client as McpClient
from mcp.client.streamable_http import streamable_http_client

from convostack.testing.mcp_server import mcp_test_server

ROUNDS = 5
CALL = 'call add {"a": 1, "b": 2}'


def _turn(client: Client, body: JSONDict) -> tuple[float, JSONDict]:
    started = time.perf_counter()
    status, raw = client.call("POST", "/v1/responses", body)
    elapsed = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"turn failed: {status} {raw[:300]!r}")
    response: JSONDict = orjson.loads(raw)
    return elapsed, response


def _kinds(response: JSONDict) -> list[str]:
    return [item["type"] for item in response["output"]]


async def _client_rounds(client: Client, mcp_url: str, base: str, samples: int) -> list[float]:
    """Five rounds with the client running the tool: its own MCP session per turn."""
    integer = {"type": "integer"}
    schema = {"type": "object", "properties": {"a": integer, "b": integer}}
    function = {"type": "function", "name": "add", "parameters": schema}
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        async with (
            httpx2.AsyncClient() as http,
            McpClient(streamable_http_client(mcp_url, http_client=http)) as session,
        ):
            body: JSONDict = {"model": "fake-model", "input": f"{CALL} x{ROUNDS}",
                              "tools": [function], "previous_response_id": base}  # fmt: skip
            for _ in range(ROUNDS + 1):
                _, response = _turn(client, body)
                calls = [i for i in response["output"] if i["type"] == "function_call"]
                if not calls:
                    break
                outputs = []
                for call in calls:
                    result = await session.call_tool(call["name"], orjson.loads(call["arguments"]))
                    text = "".join(getattr(b, "text", "") for b in result.content)
                    outputs.append({"type": "function_call_output", "call_id": call["call_id"],
                                    "output": text})  # fmt: skip
                body = {"model": "fake-model", "input": outputs, "tools": [function],
                        "previous_response_id": response["id"]}  # fmt: skip
        times.append(time.perf_counter() - started)
    return times


async def _direct_mcp(mcp_url: str, samples: int) -> list[float]:
    async with (
        httpx2.AsyncClient() as http,
        McpClient(streamable_http_client(mcp_url, http_client=http)) as session,
    ):
        await session.list_tools()
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            await session.call_tool("add", {"a": 1, "b": 2})
            times.append(time.perf_counter() - started)
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    exit_on_sigterm()
    with scratch_dir("bench-mcp-") as home, mcp_test_server() as mcp:
        upstream_port, port = free_port(), free_port()
        upstream = fake_upstream(upstream_port, home)
        server = convostack_serve(
            port, home, f"http://127.0.0.1:{upstream_port}/v1", home,
            settings={"mcp_allow_private_urls": "true"},
        )  # fmt: skip
        try:
            wait_healthy(server, f"http://127.0.0.1:{port}/v1/health")
            summary = _measure(port, upstream_port, mcp.url, args.samples)
        finally:
            server.stop()
            upstream.stop()
    emit(summary)


def _measure(port: int, upstream_port: int, mcp_url: str, samples: int) -> JSONDict:
    client = Client(f"http://127.0.0.1:{port}")
    tool = {"type": "mcp", "server_label": "bench", "server_url": mcp_url,
            "require_approval": "never"}  # fmt: skip
    _, base = _turn(client, {"model": "fake-model", "input": "hello", "tools": [tool]})
    assert _kinds(base)[0] == "mcp_list_tools", base

    def turns(text: str) -> list[float]:
        body = {"model": "fake-model", "input": text, "tools": [tool],
                "previous_response_id": base["id"]}  # fmt: skip
        times = []
        for _ in range(samples):
            times.append(_turn(client, body)[0])
        return times

    log("turns without a call")
    turn_0 = turns("hello")
    log(f"turns of {ROUNDS} rounds")
    turn_5 = turns(f"{CALL} x{ROUNDS}")
    _, check = _turn(client, {"model": "fake-model", "input": f"{CALL} x{ROUNDS}",
                              "tools": [tool], "previous_response_id": base["id"]})  # fmt: skip
    assert _kinds(check) == ["mcp_call"] * ROUNDS + ["message"], _kinds(check)
    log("the same rounds run by the client")
    client_5 = asyncio.run(_client_rounds(client, mcp_url, base["id"], samples))
    direct = Client(f"http://127.0.0.1:{upstream_port}")
    chat = {"model": "fake-model", "messages": [{"role": "user", "content": "hello"}]}
    model_call = [direct.timed("POST", "/v1/chat/completions", chat)[0] for _ in range(samples)]
    mcp_call = asyncio.run(_direct_mcp(mcp_url, samples))
    med = {name: statistics.median(values) * 1000 for name, values in
           (("turn_0", turn_0), ("turn_5", turn_5), ("client_5", client_5),
            ("model_call", model_call), ("mcp_call", mcp_call))}  # fmt: skip
    per_round = (med["turn_5"] - med["turn_0"]) / ROUNDS
    own = per_round - med["model_call"] - med["mcp_call"]
    return {
        "benchmark": "mcp_rounds",
        "load_average": load_average(),
        "rounds": ROUNDS,
        "turn_0": stats_ms(turn_0),
        "turn_5": stats_ms(turn_5),
        "client_5": stats_ms(client_5),
        "model_call": stats_ms(model_call),
        "mcp_call": stats_ms(mcp_call),
        "per_round_ms": round(per_round, 3),
        "own_cost_per_round_ms": round(own, 3),
        "target_own_cost_per_round_ms": 2.0,
        "server_vs_client_5_rounds": round(med["client_5"] / med["turn_5"], 2),
    }


if __name__ == "__main__":
    main()
