"""All of convostack's server benchmarks, and the same for each installed peer, side by side.

For each server (convostack on SQLite, then Llama Stack, vLLM agentic-api and SGLang smg
where bench/peers/install.sh installed them), against one shared instant fake upstream:
start-up time to healthy and idle memory, throughput with wrk (bench/throughput.py),
latency from a sequential client (bench/latency.py). convostack's start-up is measured
over several fresh starts. Prints one JSON summary per server as it finishes, then a
table with convostack's ratio to each peer (>1 means convostack is better), then one
JSON summary of everything.

    python bench/run.py [--quick] [--peers llama-stack,agentic-api,smg | --peers none]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from common import (
    JSONDict,
    Proc,
    emit,
    exit_on_sigterm,
    fake_upstream,
    free_port,
    load_average,
    log,
    scratch_dir,
)
from latency import SIZES, latency
from peers.peers import PEERS, PEERS_DIR, installed
from targets import Launcher, Target, launch_convostack
from throughput import throughput

STARTUP_RUNS = 5
IDLE_SETTLE_S = 1.0


def startup(launcher: Launcher, upstream: str, work: Path, runs: int) -> JSONDict:
    """Fresh starts (new database each): seconds from spawn to a 200 from the health
    route, and resident memory once idle."""
    times, memory = [], []
    for n in range(runs):
        target = launcher(free_port(), upstream, work / f"start-{n}")
        try:
            times.append(target.startup_s)
            time.sleep(IDLE_SETTLE_S)
            memory.append(target.proc.rss_mib())
        finally:
            target.proc.stop()
    return {
        "runs": runs,
        "to_healthy_s": {"min": round(min(times), 3), "median": round(statistics.median(times), 3)},
        "idle_rss_mib": {"median": round(statistics.median(memory), 1)},
    }


def bench_target(
    name: str, launcher: Launcher, upstream: Proc, upstream_base: str, work: Path, args: Any
) -> JSONDict:
    log(f"== {name}")
    result: JSONDict = {"target": name, "load_start": load_average()}
    runs = STARTUP_RUNS if name == "convostack" else 1
    try:
        result["startup"] = startup(launcher, upstream_base + "/v1", work, runs)
        target: Target = launcher(free_port(), upstream_base + "/v1", work / "main")
    except Exception as exc:  # a peer that does not start gets its reason printed
        log(f"  {name} did not start: {exc}")
        return {**result, "error": f"did not start: {str(exc)[:2000]}"}
    try:
        result["note"] = target.note
        result["storage"] = target.storage
        result["throughput"] = throughput(
            target,
            work / "main",
            duration_s=args.duration,
            connections=args.connections,
            conversations=args.conversations,
            growth=args.growth and name == "convostack",
            upstream=upstream,
        )
        result["latency"] = latency(
            target,
            upstream_base,
            samples=args.samples,
            sizes=args.sizes,
            growth_samples=args.growth_samples,
        )
        result["rss_mib_end"] = target.proc.rss_mib()
    except Exception as exc:
        log(f"  {name} failed: {exc}\n{target.proc.log_tail()}")
        result["error"] = f"failed: {str(exc)[:2000]}"
    finally:
        target.proc.stop()
    result["load_end"] = load_average()
    return result


# --- the side-by-side table -----------------------------------------------------------


def _get(result: JSONDict, *path: str) -> Any:
    value: Any = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _errors_pct(result: JSONDict, scenario: str) -> float | None:
    row: JSONDict | None = _get(result, "throughput", "rows", scenario)
    if not row or not row["requests"]:
        return None
    errors: int = sum(row["errors"].values())
    requests: int = row["requests"]
    return round(100 * errors / requests, 2)


# (label, how to read it, True when higher is better)
ROWS: list[tuple[str, tuple[str, ...], bool]] = [
    ("items.create req/s", ("throughput", "rows", "items_create", "requests_per_s"), True),
    ("items.list req/s", ("throughput", "rows", "items_list", "requests_per_s"), True),
    ("turn req/s", ("throughput", "rows", "turn", "requests_per_s"), True),
    *[
        (f"turn on {size} items, median ms", ("latency", "turn_by_conversation_items",
                                              str(size), "median_ms"), False)
        for size in SIZES
    ],
    ("(the fake upstream alone, 10000 items) ms", ("latency", "turn_by_conversation_items",
                                                   "10000", "upstream_alone_median_ms"), False),
    ("items.create median ms", ("latency", "calls", "items.create", "median_ms"), False),
    ("items.list median ms", ("latency", "calls", "items.list", "median_ms"), False),
    ("stream first delta overhead ms", ("latency", "streaming", "overhead_median_ms"), False),
    ("start to healthy s", ("startup", "to_healthy_s", "median"), False),
    ("idle RSS MiB", ("startup", "idle_rss_mib", "median"), False),
]  # fmt: skip


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value >= 100:
        return f"{value:,.0f}"
    return str(value)


def table(results: list[JSONDict]) -> tuple[str, list[JSONDict]]:
    ours = results[0]
    peers = results[1:]
    header = ["figure", "convostack"]
    for peer in peers:
        header += [peer["target"], "ratio"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows: list[JSONDict] = []
    for label, path, higher in ROWS:
        mine = _get(ours, *path)
        cells = [label, _fmt(mine)]
        row: JSONDict = {"figure": label, "convostack": mine}
        for peer in peers:
            theirs = _get(peer, *path)
            ratio = None
            if isinstance(mine, int | float) and isinstance(theirs, int | float):
                if higher and theirs > 0:
                    ratio = round(mine / theirs, 2)
                elif not higher and mine > 0:
                    ratio = round(theirs / mine, 2)
            cells += [_fmt(theirs), "-" if ratio is None else f"{ratio}x"]
            row[peer["target"]] = theirs
            row[f"ratio_to_{peer['target']}"] = ratio
        lines.append("| " + " | ".join(cells) + " |")
        rows.append(row)
    extra = ["turn errors %"]
    for result in [ours, *peers]:
        extra.append(_fmt(_errors_pct(result, "turn")))
        if result is not ours:
            extra.append("")
    lines.append("| " + " | ".join(extra) + " |")
    history = ["full history at every size"]
    for result in [ours, *peers]:
        sizes: JSONDict = _get(result, "latency", "turn_by_conversation_items") or {}
        short = [
            f"{v.get('history_sent_last_turn')}/{v.get('history_expected_last_turn')}"
            for v in sizes.values()
            if not v.get("full_history")
        ]
        history.append("-" if not sizes else "yes" if not short else "NO: " + ", ".join(short))
        if result is not ours:
            history.append("")
    lines.append("| " + " | ".join(history) + " |")
    for result in peers:
        if "error" in result:
            lines.append(f"\n{result['target']}: {result['error'][:300]}")
    return "\n".join(lines), rows


def growth_table(ours: JSONDict) -> str:
    """convostack's throughput and p99 latency by concurrent connections."""
    by_clients: JSONDict = _get(ours, "throughput", "growth_by_connections") or {}
    if not by_clients:
        return ""
    header = "| connections | " + " | ".join(
        f"{s} req/s | {s} p99 ms" for s in ("items_create", "items_list", "turn")
    )
    lines = [header + " |", "|" + "---|" * (1 + 2 * 3)]
    for clients, rows in by_clients.items():
        cells = [clients]
        for scenario in ("items_create", "items_list", "turn"):
            row = rows.get(scenario) or {}
            cells += [_fmt(row.get("requests_per_s")), _fmt(_get(row, "latency_ms", "p99"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma list, or 'none'")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--growth-samples", type=int, default=20)
    parser.add_argument(
        "--no-growth", action="store_true", help="skip convostack at 1, 4, 16 and 64 clients"
    )
    args = parser.parse_args(argv)
    exit_on_sigterm()
    args.sizes = SIZES
    args.growth = not args.no_growth
    if args.quick:
        args.duration, args.conversations, args.samples, args.growth_samples = 3, 200, 50, 5
        args.growth = False
    wanted = [] if args.peers == "none" else [p for p in args.peers.split(",") if p]
    started = time.time()
    results: list[JSONDict] = []
    with scratch_dir("convostack-bench-") as work:
        port = free_port()
        upstream = fake_upstream(port, work / "logs")
        base = f"http://127.0.0.1:{port}"
        try:
            targets: list[tuple[str, Launcher]] = [("convostack", launch_convostack)]
            for name in wanted:
                if name not in PEERS:
                    parser.error(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
                if installed(name):
                    targets.append((name, PEERS[name]))
                else:
                    results_note = f"not installed in {PEERS_DIR} (run bench/peers/install.sh)"
                    log(f"== {name}: {results_note}")
                    results.append({"target": name, "error": results_note})
            for name, launcher in targets:
                result = bench_target(name, launcher, upstream, base, work / name, args)
                emit({"benchmark": "server", **result})
                results.append(result)
        finally:
            upstream.stop()
    results.sort(key=lambda r: r["target"] != "convostack")
    text, rows = table(results)
    growth = growth_table(results[0])
    print(text, file=sys.stderr)
    if growth:
        print("\nconvostack by concurrent connections:\n" + growth, file=sys.stderr)
    emit(
        {
            "benchmark": "summary",
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "load_end": load_average()},
            "wall_s": round(time.time() - started, 1),
            "rows": rows,
            "table_markdown": text,
            "growth_markdown": growth,
        }
    )  # fmt: skip


if __name__ == "__main__":
    main()
