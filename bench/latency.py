"""Latency from one sequential client (stdlib http.client, one keep-alive connection), so
that the client's own cost is small and the same for every server; nothing is subtracted.

- each Conversations call, and a turn on a short conversation: min / median / p99;
- a turn on conversations of 10, 100, 1000 and 10,000 items, checking from the fake
  upstream's answer ("[n messages]" or "[n items]") and from its record of the request
  (GET /fake/requests) that the whole history went upstream;
- streaming: time to the first byte and to the first text delta of a streamed turn,
  against the fake upstream's own time to its first text chunk for the same history.

    python bench/latency.py [--samples 200] [--sizes 10,100,1000,10000]
                            [--storage sqlite|postgres]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from typing import Any

from common import (
    Client,
    JSONDict,
    emit,
    exit_on_sigterm,
    fake_upstream,
    free_port,
    load_average,
    log,
    scratch_dir,
    stats_ms,
)
from targets import OURS, Target, message, new_conversations, running, seed_items

SIZES = (10, 100, 1000, 10_000)
ECHO_COUNT = re.compile(rb"\[(\d+) (?:messages|items)\]")
# A turn's time budget: the growth test stops adding samples for a size after this.
SIZE_BUDGET_S = 30.0


def _sample(
    client: Client, samples: int, make: Callable[[int], tuple[str, str, Any]]
) -> tuple[JSONDict, int]:
    """`samples` sequential calls; their latency stats and how many failed."""
    times, failures = [], 0
    for n in range(samples):
        method, path, body = make(n)
        seconds, status, _ = client.timed(method, path, body)
        if 200 <= status < 300:
            times.append(seconds)
        else:
            failures += 1
    return {**stats_ms(times), "failures": failures}, failures


def calls(target: Target, samples: int) -> JSONDict:
    """Each Conversations call, and a turn, `samples` times."""
    client = target.client()
    out: JSONDict = {}
    try:
        created: list[str] = []

        def create(n: int) -> tuple[str, str, Any]:
            return "POST", "/v1/conversations", {"metadata": {"n": str(n)}}

        out["conversations.create"], _ = _sample(client, samples, create)
        created = new_conversations(target, samples, workers=2)
        out["conversations.retrieve"], _ = _sample(
            client, samples, lambda n: ("GET", f"/v1/conversations/{created[n]}", None)
        )
        out["conversations.update"], _ = _sample(
            client,
            samples,
            lambda n: ("POST", f"/v1/conversations/{created[n]}", {"metadata": {"k": "v"}}),
        )
        # Items on one conversation: create, then list, retrieve and delete what was made.
        home = created[0]
        item_ids: list[str] = []
        times, failures = [], 0
        for n in range(samples):
            seconds, status, body = client.timed(
                "POST", f"/v1/conversations/{home}/items", {"items": [message(n)]}
            )
            if status == 200:
                times.append(seconds)
                item_ids.append(json.loads(body)["data"][0]["id"])
            else:
                failures += 1
        out["items.create"] = {**stats_ms(times), "failures": failures}
        out["items.list"], _ = _sample(
            client, samples, lambda n: ("GET", f"/v1/conversations/{home}/items?limit=20", None)
        )
        out["items.retrieve"], _ = _sample(
            client,
            len(item_ids),
            lambda n: ("GET", f"/v1/conversations/{home}/items/{item_ids[n]}", None),
        )
        out["items.delete"], _ = _sample(
            client,
            len(item_ids),
            lambda n: ("DELETE", f"/v1/conversations/{home}/items/{item_ids[n]}", None),
        )
        # Turns on short conversations: 20 conversations of 10 items, in turn.
        short = created[1:21]
        seed_items(target, short, 10)
        out["turn (10+ items)"], _ = _sample(
            client,
            samples,
            lambda n: ("POST", "/v1/responses", target.turn_body(short[n % len(short)])),
        )
        out["conversations.delete"], _ = _sample(
            client, samples - 21, lambda n: ("DELETE", f"/v1/conversations/{created[21 + n]}", None)
        )
    finally:
        client.close()
    return out


def _upstream_history(upstream: Client, route: str) -> int | None:
    """How many messages (or input items) the last request to `route` carried."""
    records = upstream.json("GET", "/fake/requests")["data"]
    for record in reversed(records):
        if record["path"] == route:
            body = record["body"]
            return len(body["messages"] if "messages" in body else body.get("input") or [])
    return None


def _upstream_alone(upstream: Client, route: str, length: int, samples: int) -> float | None:
    """The fake upstream's own median time for a request carrying `length` messages."""
    history = [message(n) for n in range(length)]
    if route == "/v1/responses":
        body: JSONDict = {"model": "fake-model", "input": history}
    else:
        body = {"model": "fake-model", "messages": [
            {"role": "user", "content": m["content"]} for m in history]}  # fmt: skip
    times = []
    for _ in range(samples):
        seconds, status, _ = upstream.timed("POST", route, body)
        if status == 200:
            times.append(seconds)
    median: float | None = stats_ms(times).get("median_ms")
    return median


def growth(target: Target, upstream: Client, sizes: tuple[int, ...], samples: int) -> JSONDict:
    """Turn latency by conversation length, and whether the whole history went upstream."""
    client = target.client(timeout_s=300)
    out: JSONDict = {}
    try:
        for size in sizes:
            (cid,) = new_conversations(target, 1, workers=1)
            seed_items(target, [cid], size)
            turns = samples if size < 10_000 else max(3, samples // 4)
            times: list[float] = []
            mismatches: list[tuple[int, int]] = []
            failures = 0
            deadline = time.monotonic() + SIZE_BUDGET_S
            for n in range(turns):
                if n == turns - 1:
                    upstream.call("POST", "/fake/reset")
                seconds, status, body = client.timed("POST", "/v1/responses", target.turn_body(cid))
                if status != 200:
                    failures += 1
                    continue
                times.append(seconds)
                # History: the seeded items and two per earlier turn, plus the new input.
                expected = size + 2 * (len(times) - 1) + 1
                found = ECHO_COUNT.search(body)
                got = int(found.group(1)) if found else -1
                if got != expected:
                    mismatches.append((expected, got))
                if time.monotonic() > deadline and len(times) >= 3:
                    break
            sent = _upstream_history(upstream, target.upstream_route)
            expected_last = size + 2 * (len(times) - 1) + 1
            alone = _upstream_alone(upstream, target.upstream_route, expected_last, 3)
            out[str(size)] = {
                **stats_ms(times),
                "upstream_alone_median_ms": alone,
                "failures": failures,
                "full_history": not mismatches and sent == expected_last,
                "history_sent_last_turn": sent,
                "history_expected_last_turn": expected_last,
                "mismatches": mismatches[:3],
            }
            log(
                f"  {target.name} turn on {size} items: median {out[str(size)].get('median_ms')}"
                f" ms, full history {out[str(size)]['full_history']} ({sent}/{expected_last})"
            )
    finally:
        client.close()
    return out


def streaming(target: Target, upstream_base: str, samples: int) -> JSONDict:
    """A streamed turn's first byte and first text delta, against the upstream's own."""
    (cid,) = new_conversations(target, 1, workers=1)
    seed_items(target, [cid], 10)
    client = target.client()
    ours_first_byte, ours_first_delta, ours_total = [], [], []
    failures = 0
    try:
        for _ in range(samples):
            body = target.turn_body(cid, stream=True)
            first_byte, first_delta, total, status = client.stream_first(
                "/v1/responses", body, b"response.output_text.delta"
            )
            if status != 200 or first_delta < 0:
                failures += 1
                continue
            ours_first_byte.append(first_byte)
            ours_first_delta.append(first_delta)
            ours_total.append(total)
    finally:
        client.close()
    # The upstream alone, with a history of the same length as the turns above had.
    direct = Client(upstream_base)
    history = [message(n) for n in range(10 + samples)]
    upstream_first: list[float] = []
    try:
        for _ in range(samples):
            if target.upstream_route == "/v1/responses":
                body = {"model": "fake-model", "input": history, "stream": True}
                marker = b"response.output_text.delta"
            else:
                messages = [{"role": "user", "content": m["content"]} for m in history]
                body = {"model": "fake-model", "messages": messages, "stream": True}
                marker = b'"content":"e'  # the first text piece: the reply starts "echo:"
            _, first, _, status = direct.stream_first(target.upstream_route, body, marker)
            if status == 200 and first >= 0:
                upstream_first.append(first)
    finally:
        direct.close()
    ours = stats_ms(ours_first_delta)
    theirs = stats_ms(upstream_first)
    overhead = (
        round(ours["median_ms"] - theirs["median_ms"], 3)
        if ours.get("n") and theirs.get("n")
        else None
    )
    return {
        "first_byte": stats_ms(ours_first_byte),
        "first_text_delta": ours,
        "whole_stream": stats_ms(ours_total),
        "upstream_first_text_delta": theirs,
        "overhead_median_ms": overhead,
        "failures": failures,
    }


def latency(
    target: Target,
    upstream_base: str,
    *,
    samples: int = 200,
    sizes: tuple[int, ...] = SIZES,
    growth_samples: int = 20,
) -> JSONDict:
    upstream = Client(upstream_base)
    try:
        return {
            "target": target.name,
            "load_before": load_average(),
            "calls": calls(target, samples),
            "turn_by_conversation_items": growth(target, upstream, sizes, growth_samples),
            "streaming": streaming(target, upstream_base, min(samples, 50)),
            "load_after": load_average(),
        }
    finally:
        upstream.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--growth-samples", type=int, default=20)
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument(
        "--storage", choices=tuple(OURS), default="sqlite", help="convostack's database"
    )
    args = parser.parse_args(argv)
    exit_on_sigterm()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    with scratch_dir("convostack-bench-") as work:
        port = free_port()
        upstream_proc = fake_upstream(port, work / "logs")
        upstream_base = f"http://127.0.0.1:{port}"
        try:
            with running(OURS[args.storage][1], upstream_base + "/v1", work) as target:
                summary = latency(
                    target,
                    upstream_base,
                    samples=args.samples,
                    sizes=sizes,
                    growth_samples=args.growth_samples,
                )
        finally:
            upstream_proc.stop()
    emit({"benchmark": "latency", **summary})


if __name__ == "__main__":
    main()
