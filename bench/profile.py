"""Profile convostack under wrk load with py-spy (sampling, all threads, native frames off).

Starts the fake upstream and `convostack serve`, prepares the scenario as
bench/throughput.py does, records DURATION seconds of one scenario, and prints the
functions with the most samples: self (the function itself running) and inclusive (it or
anything it called), as a share of all samples. The raw collapsed stacks are kept in
--out for flame graphs (e.g. speedscope.app or inferno-flamegraph).

With `--storage postgres` convostack runs on a throwaway PostgreSQL (bench/pgserver.py)
started with pg_stat_statements, and the summary adds each statement's calls per request
(each one a round trip) and mean time in the server. `--native` adds C and Cython frames
(asyncpg's protocol, uvloop, httptools), which are otherwise charged to the Python frame
below them; `--gil` keeps only the samples that hold the GIL.

    python bench/profile.py --scenario turn [--duration 8] [--out /tmp/turn.txt]
                            [--storage sqlite|postgres] [--native] [--gil]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sys
import threading
import time
from pathlib import Path

from common import (
    emit,
    exit_on_sigterm,
    fake_upstream,
    free_port,
    load_average,
    log,
    scratch_dir,
    spawn,
    wrk,
)
from pgserver import POSTGRES
from targets import OURS, Target, running
from throughput import SCENARIOS, prepare

TOP = 25


def package(frame: str) -> str:
    """Where a frame's code lives: the first folder of its file (`asyncpg`, `convostack`,
    `starlette`, `uvicorn`, `asyncio`...), or the file itself (a C file, a library)."""
    if frame.startswith("thread ("):
        return "(no frame: the thread itself)"
    where = frame.rpartition(" (")[2].rstrip(")").split(":", 1)[0]
    return where.split("/", 1)[0] if "/" in where else where.removesuffix(".py")


def summarise(collapsed: Path, top: int = TOP) -> dict[str, list[tuple[str, float]]]:
    """Self and inclusive sample shares per function from py-spy's `raw` output, and the
    self shares by package (whose code was running when sampled)."""
    self_counts: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        self_counts[frames[-1]] += count
        packages[package(frames[-1])] += count
        self_counts[frames[0].split(": ", 1)[-1] + " (all of the thread)"] += count
        for frame in set(frames):
            inclusive[frame] += count

    def share(counter: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]

    if not total:
        return {"self": [], "inclusive": [], "packages": []}
    return {"self": share(self_counts), "inclusive": share(inclusive), "packages": share(packages)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scenario", choices=SCENARIOS, default="turn")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, default=None, help="keep the collapsed stacks")
    parser.add_argument("--gil", action="store_true", help="only samples holding the GIL")
    parser.add_argument("--native", action="store_true", help="C and Cython frames too")
    parser.add_argument(
        "--storage", choices=tuple(OURS), default="sqlite", help="convostack's database"
    )
    args = parser.parse_args(argv)
    exit_on_sigterm()
    if args.storage == "postgres":
        POSTGRES.settings["shared_preload_libraries"] = "pg_stat_statements"
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with scratch_dir("convostack-profile-") as work:
        port = free_port()
        upstream = fake_upstream(port, work / "logs")
        try:
            with running(OURS[args.storage][1], f"http://127.0.0.1:{port}/v1", work) as target:
                files, _ = prepare(target, work, 1000)
                if target.database_url:
                    POSTGRES.reset_statements(target.database_url)
                raw = args.out or work / "profile.txt"
                spy = spawn(
                    "py-spy",
                    [py_spy, "record", "--pid", str(target.proc.pid), "--rate", str(args.rate),
                     "--duration", str(round(args.duration)), "--format", "raw",
                     "--threads", "--output", str(raw),
                     # Native stacks need the process paused at each sample.
                     *(["--native"] if args.native else ["--nonblocking"]),
                     *(["--gil"] if args.gil else [])],
                    work / "logs",
                )  # fmt: skip
                time.sleep(0.5)
                result: dict[str, object] = {}

                def load() -> None:
                    run = wrk(
                        target.base,
                        files[args.scenario],
                        duration_s=args.duration,
                        connections=args.connections,
                        server=target.proc,
                        database_cpu_s=target.database_cpu_s,
                    )
                    result["run"] = run.as_dict()

                loader = threading.Thread(target=load)
                loader.start()
                loader.join(timeout=args.duration + 90)
                spy.popen.wait(timeout=args.duration + 60)
                if not raw.is_file():
                    raise RuntimeError(f"py-spy recorded nothing: {spy.log_tail()}")
                summary = summarise(raw)
                database = _statements(target, result)
        finally:
            upstream.stop()
            POSTGRES.stop()
    for kind in ("self", "inclusive", "packages"):
        log(f"--- {kind} ---")
        for name, pct in summary[kind]:
            log(f"{pct:5.1f}%  {name}")
    if database:
        log("--- PostgreSQL statements (calls per request, mean ms in the server) ---")
        for statement in database:
            log(f"{statement['calls_per_request']:6.3f}  {statement['mean_exec_ms']:7.4f}"
                f"  {statement['query']}")  # fmt: skip
    emit({"benchmark": "profile", "scenario": args.scenario, "storage": args.storage,
          "load": load_average(), **result, "top": summary, "statements": database})  # fmt: skip


def _statements(target: Target, result: dict[str, object]) -> list[dict[str, object]]:
    """The statements PostgreSQL ran for the measured requests (none on SQLite)."""
    run = result.get("run")
    if not target.database_url or not isinstance(run, dict):
        return []
    return list(POSTGRES.statements(target.database_url, run["requests"]))


if __name__ == "__main__":
    main()
