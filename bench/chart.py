"""A chart (PNG) of turn latency against conversation length, from the benchmarks' JSON:

- `--share`: bench/turn_share.py's summary (convostack: the whole turn, its own share,
  the upstream alone), and `--before` the same from an earlier commit;
- `--servers`: bench/run.py's or bench/latency.py's output (JSON lines): every server's
  median turn on N items, convostack beside each peer.

    python bench/chart.py --share after.json [--before before.json] [--servers run.jsonl]
                          [--out bench/turn_latency.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

Series = dict[int, float]


def _json_lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def share_series(summary: dict[str, Any], label: str) -> dict[str, Series]:
    rows = summary["by_items"]

    def pick(*path: str) -> Series:
        series: Series = {}
        for size, row in rows.items():
            value: Any = row
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, int | float):
                series[int(size)] = float(value)
        return series

    return {
        f"{label}: turn, median": pick("turn", "median_ms"),
        f"{label}: own share, median": pick("share", "median_ms"),
        f"{label}: own share, p99": pick("share", "p99_ms"),
        f"{label}: first turn's own share (nothing kept)": pick("first_turn", "share_ms"),
    }


def server_series(records: list[dict[str, Any]]) -> dict[str, Series]:
    out: dict[str, Series] = {}
    for record in records:
        latency = record.get("latency", record)
        sizes = latency.get("turn_by_conversation_items") if isinstance(latency, dict) else None
        name = record.get("target") or latency.get("target")
        if not sizes or not name:
            continue
        out[f"{name}: turn, median (run.py)"] = {
            int(size): float(row["median_ms"]) for size, row in sizes.items()
            if row.get("median_ms") is not None
        }  # fmt: skip
    return out


def draw(lines: dict[str, Series], upstream: Series, out: Path, title: str) -> None:
    import matplotlib  # a dev extra: only this script needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 6), dpi=110)
    for label, series in lines.items():
        if series:
            sizes = sorted(series)
            style = "--" if "before" in label else "-"
            axes.plot(sizes, [series[s] for s in sizes], style, marker="o", label=label)
    if upstream:
        sizes = sorted(upstream)
        axes.plot(sizes, [upstream[s] for s in sizes], ":", color="black", marker="x",
                  label="the fake upstream alone, median")  # fmt: skip
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("items in the conversation")
    axes.set_ylabel("milliseconds")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--share", type=Path, required=True)
    parser.add_argument("--before", type=Path)
    parser.add_argument("--servers", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "turn_latency.png")
    parser.add_argument("--title", default="A turn against an instant upstream, by history")
    args = parser.parse_args(argv)
    after = _json_lines(args.share)[-1]
    lines = share_series(after, "convostack")
    if args.before:
        before = share_series(_json_lines(args.before)[-1], "convostack before")
        lines |= {k: v for k, v in before.items() if "first" not in k and "p99" not in k}
    if args.servers:
        lines |= server_series(_json_lines(args.servers))
    upstream = {int(size): float(row["upstream_alone_median_ms"])
                for size, row in after["by_items"].items()
                if row.get("upstream_alone_median_ms") is not None}  # fmt: skip
    draw(lines, upstream, args.out, args.title)
    print(json.dumps({"chart": str(args.out), "lines": sorted(lines)}))


if __name__ == "__main__":
    main()
