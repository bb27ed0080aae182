"""Throughput with wrk (2 threads, 16 connections by default) of three calls:

- items.create: one message per call, spread round-robin over CONVERSATIONS conversations;
- items.list: limit 20, over LIST_CONVERSATIONS conversations of 20 items each;
- turn: responses.create with a conversation and a short input, spread round-robin over
  CONVERSATIONS other conversations (each starts empty and grows by two items a turn),
  against the instant fake upstream.

Each row also gives wrk's latency percentiles, the error counts (connect/read/write/
timeout and non-2xx `status`), and the server's own CPU microseconds per request.

    python bench/throughput.py [--duration 10] [--connections 16] [--growth]
                               [--storage sqlite|postgres]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from common import (
    FAKE_MODEL,
    JSONDict,
    Proc,
    emit,
    exit_on_sigterm,
    fake_upstream,
    free_port,
    load_average,
    log,
    scratch_dir,
    write_requests,
    wrk,
)
from targets import (
    OURS,
    Target,
    launch_convostack_granian,
    message,
    new_conversations,
    running,
    seed_items,
)

CONVERSATIONS = 1000
LIST_CONVERSATIONS = 100
SCENARIOS = ("items_create", "items_list", "turn")
GROWTH_CONNECTIONS = (1, 4, 16, 64)


def prepare(
    target: Target, work: Path, conversations: int
) -> tuple[dict[str, Path], dict[str, int]]:
    """The request files of the three scenarios (conversations created and seeded), and
    how many conversations each spreads over."""
    log(f"  {target.name}: creating {2 * conversations + LIST_CONVERSATIONS} conversations")
    for_create = new_conversations(target, conversations)
    for_list = new_conversations(target, LIST_CONVERSATIONS)
    seed_items(target, for_list, 20)
    for_turns = new_conversations(target, conversations)
    if len(for_create) < conversations:
        log(f"  {target.name}: only {len(for_create)} conversations made within the budget")
    create_body = {"items": [message(0)]}
    counts = {"items_create": len(for_create), "items_list": len(for_list),
              "turn": len(for_turns)}  # fmt: skip
    return {
        "items_create": write_requests(
            work / "items_create.txt",
            [("POST", f"/v1/conversations/{c}/items", create_body) for c in for_create],
        ),
        "items_list": write_requests(
            work / "items_list.txt",
            [("GET", f"/v1/conversations/{c}/items?limit=20", None) for c in for_list],
        ),
        "turn": write_requests(
            work / "turn.txt", [("POST", "/v1/responses", target.turn_body(c)) for c in for_turns]
        ),
    }, counts


def measure(
    target: Target,
    files: dict[str, Path],
    *,
    duration_s: float,
    connections: int,
    scenarios: tuple[str, ...] = SCENARIOS,
    upstream: Proc | None = None,
) -> JSONDict:
    rows: JSONDict = {}
    for scenario in scenarios:
        run = wrk(
            target.base,
            files[scenario],
            duration_s=duration_s,
            connections=connections,
            server=target.proc,
            upstream=upstream if scenario == "turn" else None,
            database_cpu_s=target.database_cpu_s,
        )
        rows[scenario] = run.as_dict()
        errors = sum(run.errors.values())
        database = run.extra.get("database_cpu_us_per_request")
        log(
            f"  {target.name} {scenario} c={connections}: {run.requests_per_s:,.0f} req/s, "
            f"p50 {run.latency_ms['p50']} ms, p99 {run.latency_ms['p99']} ms, "
            f"{run.server_cpu_us_per_request} us CPU/req"
            + ("" if database is None else f" (+ {database} in PostgreSQL, not counted)")
            + f", errors {errors}, load {run.load_before}->{run.load_after}"
        )
    return rows


def throughput(
    target: Target,
    work: Path,
    *,
    duration_s: float = 10.0,
    connections: int = 16,
    conversations: int = CONVERSATIONS,
    growth: bool = False,
    growth_duration_s: float = 5.0,
    upstream: Proc | None = None,
) -> JSONDict:
    files, counts = prepare(target, work, conversations)
    result: JSONDict = {
        "target": target.name,
        "storage": target.storage,
        "wrk": {"threads": 2, "connections": connections, "duration_s": duration_s},
        "conversations": counts,
        "rss_mib_before": target.proc.rss_mib(),
        "rows": measure(
            target, files, duration_s=duration_s, connections=connections, upstream=upstream
        ),
    }
    if growth:
        by_clients: dict[str, Any] = {}
        for clients in GROWTH_CONNECTIONS:
            by_clients[str(clients)] = measure(
                target,
                files,
                duration_s=growth_duration_s,
                connections=clients,
                upstream=upstream,
            )
        result["growth_by_connections"] = by_clients
    result["rss_mib_after"] = target.proc.rss_mib()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--conversations", type=int, default=CONVERSATIONS)
    parser.add_argument("--growth", action="store_true", help="also 1, 4, 16, 64 connections")
    parser.add_argument(
        "--server",
        choices=("uvicorn", "granian"),
        default="uvicorn",
        help="the ASGI server under convostack (granian: see targets.GRANIAN)",
    )
    parser.add_argument(
        "--storage", choices=tuple(OURS), default="sqlite", help="convostack's database"
    )
    args = parser.parse_args(argv)
    if args.server == "granian" and args.storage != "sqlite":
        parser.error("--server granian runs on SQLite only")
    exit_on_sigterm()
    with scratch_dir("convostack-bench-") as work:
        upstream_port = free_port()
        upstream = fake_upstream(upstream_port, work / "logs")
        try:
            granian = args.server == "granian"
            launcher = launch_convostack_granian if granian else OURS[args.storage][1]
            with running(launcher, f"http://127.0.0.1:{upstream_port}/v1", work) as t:
                summary = throughput(
                    t,
                    work,
                    duration_s=args.duration,
                    connections=args.connections,
                    conversations=args.conversations,
                    growth=args.growth,
                    upstream=upstream,
                )
        finally:
            upstream.stop()
    summary["benchmark"] = "throughput"
    summary["model"] = FAKE_MODEL
    summary["load_end"] = load_average()
    emit(summary)


if __name__ == "__main__":
    main()
