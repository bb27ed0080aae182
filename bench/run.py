"""All of convostack's server benchmarks, and the same for each installed peer, side by side.

For each server (convostack on SQLite and on PostgreSQL, then Llama Stack, vLLM
agentic-api and SGLang smg where bench/peers/install.sh installed them), against one
shared instant fake upstream: start-up time to healthy and idle memory, throughput with
wrk (bench/throughput.py), latency from a sequential client (bench/latency.py).
convostack's start-up is measured over several fresh starts, and its throughput also by
concurrent connections. Prints one JSON summary per server as it finishes, then a table
with convostack's ratio to each peer (>1 means convostack is better), convostack on
PostgreSQL against smg (also on PostgreSQL) on its own, then one JSON summary of all.

The PostgreSQL targets (convostack-pg, smg) each get a fresh throwaway server
(bench/pgserver.py, needs PostgreSQL's binaries: apt-get install -y postgresql); its own
CPU and memory are not counted for either, its CPU per request is shown apart.

    python bench/run.py [--quick] [--ours sqlite,postgres]
                        [--peers llama-stack,agentic-api,smg | --peers none]
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

import pgserver
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
from pgserver import POSTGRES
from report import growth_table, pairs, same_storage_tables, table
from targets import OURS, Launcher, Target
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
    name: str,
    launcher: Launcher,
    upstream: Proc,
    upstream_base: str,
    work: Path,
    args: Any,
    ours: bool,
) -> JSONDict:
    log(f"== {name}")
    result: JSONDict = {"target": name, "load_start": load_average()}
    runs = STARTUP_RUNS if ours else 1
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
            growth=args.growth and ours,
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


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    parser.add_argument(
        "--ours",
        default=",".join(OURS),
        help=f"convostack's storages to measure, comma list of {', '.join(OURS)} "
        "(the first is the one every peer's ratio is against)",
    )
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
    args.sizes = SIZES
    args.growth = not args.no_growth
    if args.quick:
        args.duration, args.conversations, args.samples, args.growth_samples = 3, 200, 50, 5
        args.growth = False
    args.ours = [s for s in args.ours.split(",") if s]
    args.peers = [] if args.peers == "none" else [p for p in args.peers.split(",") if p]
    for kind, names, known in (("storage", args.ours, OURS), ("peer", args.peers, PEERS)):
        for name in names:
            if name not in known:
                parser.error(f"unknown {kind} {name!r}; known: {', '.join(known)}")
    if not args.ours:
        parser.error("--ours needs at least one of " + ", ".join(OURS))
    return args


def _targets(args: argparse.Namespace) -> tuple[list[tuple[str, Launcher, bool]], list[JSONDict]]:
    """What to measure (name, launcher, whether it is ours), and a result with the reason
    for each that cannot be (its software is not installed)."""
    targets: list[tuple[str, Launcher, bool]] = []
    missing: list[JSONDict] = []
    for storage in args.ours:
        name, launcher = OURS[storage]
        if storage == "postgres" and not pgserver.installed():
            missing.append(
                {"target": name, "storage": "PostgreSQL", "error": pgserver.NOT_INSTALLED}
            )
        else:
            targets.append((name, launcher, True))
    for name in args.peers:
        if installed(name):
            targets.append((name, PEERS[name], False))
        else:
            reason = f"not installed in {PEERS_DIR} (run bench/peers/install.sh)"
            missing.append({"target": name, "error": reason})
    for result in missing:
        log(f"== {result['target']}: {result['error']}")
    return targets, missing


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    exit_on_sigterm()
    started = time.time()
    targets, results = _targets(args)
    with scratch_dir("convostack-bench-") as work:
        port = free_port()
        upstream = fake_upstream(port, work / "logs")
        base = f"http://127.0.0.1:{port}"
        try:
            for name, launcher, ours in targets:
                try:
                    result = bench_target(name, launcher, upstream, base, work / name, args, ours)
                finally:
                    POSTGRES.stop()  # the next PostgreSQL target starts on a fresh server
                emit({"benchmark": "server", **result})
                results.append(result)
        finally:
            upstream.stop()
    order = [OURS[s][0] for s in args.ours] + args.peers
    results.sort(key=lambda r: order.index(r["target"]))
    mine = [r for r in results if r["target"] in order[: len(args.ours)]]
    peers = results[len(mine) :]
    compared = pairs(mine, peers)
    text, rows = table(mine, peers, compared)
    same_storage, verdicts = same_storage_tables(mine, compared)
    growth = "\n\n".join(g for g in map(growth_table, mine) if g)
    for part in (text, same_storage, growth):
        if part:
            print("\n" + part, file=sys.stderr)
    emit(
        {
            "benchmark": "summary",
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "load_end": load_average()},
            "wall_s": round(time.time() - started, 1),
            "rows": rows,
            "verdicts": verdicts,
            "table_markdown": text,
            "same_storage_markdown": same_storage,
            "growth_markdown": growth,
        }
    )  # fmt: skip


if __name__ == "__main__":
    main()
