"""Profile convostack under wrk load with py-spy (sampling, all threads, native frames off).

Starts the fake upstream and `convostack serve`, prepares the scenario as
bench/throughput.py does, records DURATION seconds of one scenario, and prints the
functions with the most samples: self (the function itself running) and inclusive (it or
anything it called), as a share of all samples. The raw collapsed stacks are kept in
--out for flame graphs (e.g. speedscope.app or inferno-flamegraph).

    python bench/profile.py --scenario turn [--duration 8] [--out /tmp/turn.txt]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
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
    wrk,
)
from targets import launch_convostack, running
from throughput import SCENARIOS, prepare

TOP = 25


def summarise(collapsed: Path, top: int = TOP) -> dict[str, list[tuple[str, float]]]:
    """Self and inclusive sample shares per function from py-spy's `raw` output."""
    self_counts: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        self_counts[frames[-1]] += count
        self_counts[frames[0].split(": ", 1)[-1] + " (all of the thread)"] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return {"self": [], "inclusive": []}

    def share(counter: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]

    return {"self": share(self_counts), "inclusive": share(inclusive)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scenario", choices=SCENARIOS, default="turn")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, default=None, help="keep the collapsed stacks")
    parser.add_argument("--gil", action="store_true", help="only samples holding the GIL")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with scratch_dir("convostack-profile-") as work:
        port = free_port()
        upstream = fake_upstream(port, work / "logs")
        try:
            with running(launch_convostack, f"http://127.0.0.1:{port}/v1", work) as target:
                files, _ = prepare(target, work, 1000)
                raw = args.out or work / "profile.txt"
                spy = subprocess.Popen(
                    [py_spy, "record", "--pid", str(target.proc.pid), "--rate", str(args.rate),
                     "--duration", str(round(args.duration)), "--format", "raw",
                     "--threads", "--output", str(raw), "--nonblocking",
                     *(["--gil"] if args.gil else [])],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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
                    )
                    result["run"] = run.as_dict()

                loader = threading.Thread(target=load)
                loader.start()
                loader.join(timeout=args.duration + 90)
                spy.wait(timeout=args.duration + 60)
                summary = summarise(raw)
        finally:
            upstream.stop()
    for kind in ("self", "inclusive"):
        log(f"--- {kind} ---")
        for name, pct in summary[kind]:
            log(f"{pct:5.1f}%  {name}")
    emit({"benchmark": "profile", "scenario": args.scenario, "load": load_average(),
          **result, "top": summary})  # fmt: skip


if __name__ == "__main__":
    main()
