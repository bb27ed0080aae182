"""The tail of items.create: wrk's p50/p90/p99 at 1 and 16 connections, several rounds,
on one convostack (SQLite by default), so that a change to what stalls a request (GC,
WAL checkpoints, batch commits) is measured before and after on the same harness.

    python bench/items_tail.py [--duration 5] [--rounds 3] [--connections 1,16]
                               [--storage sqlite|postgres]

Settings to compare go in the environment as BENCH_CONVOSTACK_<NAME> (see common.py).
"""

from __future__ import annotations

import argparse
import statistics

from common import JSONDict, emit, exit_on_sigterm, fake_upstream, free_port, load_average, log
from common import scratch_dir as scratch
from targets import OURS, running
from throughput import CONVERSATIONS, measure, prepare


def tail(storage: str, duration_s: float, rounds: int, connections: tuple[int, ...]) -> JSONDict:
    with scratch("convostack-bench-") as work:
        upstream_port = free_port()
        upstream = fake_upstream(upstream_port, work / "logs")
        try:
            upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
            with running(OURS[storage][1], upstream_url, work) as target:
                files, _ = prepare(target, work, CONVERSATIONS)
                by_connections: JSONDict = {}
                for clients in connections:
                    runs = [
                        measure(
                            target,
                            files,
                            duration_s=duration_s,
                            connections=clients,
                            scenarios=("items_create",),
                        )["items_create"]
                        for _ in range(rounds)
                    ]
                    p99s = [run["latency_ms"]["p99"] for run in runs]
                    by_connections[str(clients)] = {
                        "p50_ms": [run["latency_ms"]["p50"] for run in runs],
                        "p90_ms": [run["latency_ms"]["p90"] for run in runs],
                        "p99_ms": p99s,
                        "p99_median_ms": statistics.median(p99s),
                        "requests_per_s": [run["requests_per_s"] for run in runs],
                        "load": [run["load_before"] for run in runs],
                    }
                    log(f"  items.create c={clients}: p99 {p99s} ms")
        finally:
            upstream.stop()
    return by_connections


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", default="1,16")
    parser.add_argument("--storage", choices=tuple(OURS), default="sqlite")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    connections = tuple(int(c) for c in args.connections.split(","))
    load_before = load_average()
    rows = tail(args.storage, args.duration, args.rounds, connections)
    emit({"benchmark": "items_tail", "storage": args.storage, "load_before": load_before,
          "by_connections": rows, "load_after": load_average()})  # fmt: skip


if __name__ == "__main__":
    main()
