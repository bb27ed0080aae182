"""bench/run.py's tables: each server's figures side by side, with ratios.

A ratio is convostack's advantage over a peer: peer/ours for times, CPU and memory,
ours/peer for rates, so >1 always means convostack is better. Every peer gets a ratio
against the first of convostack's targets (SQLite by default); a peer on the same storage
as another of convostack's targets gets one against that too (smg against convostack on
PostgreSQL), and those pairs get a table of their own.
"""

from __future__ import annotations

from typing import Any

from common import JSONDict
from latency import SIZES

# (label, where to read it, True when higher is better; None: no ratio, for information)
ROWS: list[tuple[str, tuple[str, ...], bool | None]] = [
    ("items.create req/s", ("throughput", "rows", "items_create", "requests_per_s"), True),
    ("items.list req/s", ("throughput", "rows", "items_list", "requests_per_s"), True),
    ("turn req/s", ("throughput", "rows", "turn", "requests_per_s"), True),
    *[
        (f"{label} server CPU us/req", ("throughput", "rows", scenario,
                                        "server_cpu_us_per_request"), False)
        for label, scenario in (("items.create", "items_create"), ("items.list", "items_list"),
                                ("turn", "turn"))
    ],
    *[
        (f"{label} PostgreSQL CPU us/req (not counted)", ("throughput", "rows", scenario,
                                                          "database_cpu_us_per_request"), None)
        for label, scenario in (("items.create", "items_create"), ("items.list", "items_list"),
                                ("turn", "turn"))
    ],
    *[
        (f"turn on {size} items, median ms", ("latency", "turn_by_conversation_items",
                                              str(size), "median_ms"), False)
        for size in SIZES
    ],
    ("(the fake upstream alone, 10000 items) ms", ("latency", "turn_by_conversation_items",
                                                   "10000", "upstream_alone_median_ms"), None),
    ("items.create median ms", ("latency", "calls", "items.create", "median_ms"), False),
    ("items.list median ms", ("latency", "calls", "items.list", "median_ms"), False),
    ("stream first delta overhead ms", ("latency", "streaming", "overhead_median_ms"), False),
    ("start to healthy s", ("startup", "to_healthy_s", "median"), False),
    ("idle RSS MiB", ("startup", "idle_rss_mib", "median"), False),
]  # fmt: skip


def get(result: JSONDict, *path: str) -> Any:
    value: Any = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _errors_pct(result: JSONDict, scenario: str) -> float | None:
    row: JSONDict | None = get(result, "throughput", "rows", scenario)
    if not row or not row["requests"]:
        return None
    errors: int = sum(row["errors"].values())
    requests: int = row["requests"]
    return round(100 * errors / requests, 2)


def _history(result: JSONDict) -> str:
    sizes: JSONDict = get(result, "latency", "turn_by_conversation_items") or {}
    short = [
        f"{v.get('history_sent_last_turn')}/{v.get('history_expected_last_turn')}"
        for v in sizes.values()
        if not v.get("full_history")
    ]
    return "-" if not sizes else "yes" if not short else "NO: " + ", ".join(short)


def _partial_history(result: JSONDict, path: tuple[str, ...]) -> bool:
    """Whether `path` is a turn on a conversation whose whole history `result`'s server
    did not send upstream."""
    if path[:2] != ("latency", "turn_by_conversation_items"):
        return False
    return get(result, *path[:3], "full_history") is False


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value >= 100:
        return f"{value:,.0f}"
    return str(value)


def ratio(mine: Any, theirs: Any, higher: bool | None) -> float | None:
    if higher is None or not isinstance(mine, int | float) or not isinstance(theirs, int | float):
        return None
    if higher and theirs > 0:
        return round(mine / theirs, 2)
    if not higher and mine > 0:
        return round(theirs / mine, 2)
    return None


Pair = tuple[JSONDict, JSONDict]  # (one of ours, a peer)


def pairs(ours: list[JSONDict], peers: list[JSONDict]) -> list[Pair]:
    """Every peer against the first of ours, and against any other of ours on its storage."""
    found: list[Pair] = []
    for peer in peers:
        for n, mine in enumerate(ours):
            same = mine.get("storage") is not None and mine.get("storage") == peer.get("storage")
            if n == 0 or same:
                found.append((mine, peer))
    return found


def table(
    ours: list[JSONDict], peers: list[JSONDict], compared: list[Pair]
) -> tuple[str, list[JSONDict]]:
    """Markdown: one column per server, each peer followed by its ratio columns."""
    columns: list[tuple[JSONDict, JSONDict | None]] = [(r, None) for r in ours]
    for peer in peers:
        columns.append((peer, None))
        columns += [(mine, peer) for mine, p in compared if p is peer]
    header = ["figure"] + [
        r["target"] if peer is None else f"{r['target']} ratio" for r, peer in columns
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows: list[JSONDict] = []
    for label, path, higher in ROWS:
        values = [get(r, *path) for r, _ in columns]
        if all(v is None for v in values):
            continue
        row: JSONDict = {"figure": label}
        cells = [label]
        for (result, against), value in zip(columns, values, strict=True):
            if against is None:
                row[result["target"]] = value
                cells.append(fmt(value))
                continue
            found = ratio(value, get(against, *path), higher)
            row[f"ratio_{result['target']}_to_{against['target']}"] = found
            partial = _partial_history(against, path)
            if partial:
                row[f"partial_history_{against['target']}"] = True
            cells.append("-" if found is None else f"{found}x" + (" (*)" if partial else ""))
        lines.append("| " + " | ".join(cells) + " |")
        rows.append(row)
    for label, cell in (
        ("turn errors %", lambda r: fmt(_errors_pct(r, "turn"))),
        ("full history at every size", _history),
    ):
        cells = [label] + [cell(r) if peer is None else "" for r, peer in columns]
        lines.append("| " + " | ".join(cells) + " |")
    if any(_partial_history(peer, path) for peer in peers for _, path, _ in ROWS):
        lines.append(
            "\n(*) not comparable: the peer did not send the whole history upstream at this "
            "size (see the last row), so its turn does less work"
        )
    for result in [*ours, *peers]:
        if "error" in result:
            lines.append(f"\n{result['target']}: {result['error'][:300]}")
    return "\n".join(lines), rows


def verdict(rows: list[JSONDict], mine: str, theirs: str) -> str:
    """How many figures `mine` is ahead of `theirs` on, and which it is not."""
    key = f"ratio_{mine}_to_{theirs}"
    compared = [
        (row["figure"], row[key])
        for row in rows
        if row.get(key) is not None and not row.get(f"partial_history_{theirs}")
    ]
    behind = [f"{figure} ({value}x)" for figure, value in compared if value <= 1]
    ahead = len(compared) - len(behind)
    return f"{mine} ahead of {theirs} on {ahead} of {len(compared)} comparable figures" + (
        "; not on: " + ", ".join(behind) if behind else ""
    )


def same_storage_tables(ours: list[JSONDict], compared: list[Pair]) -> tuple[str, list[str]]:
    """The verdict of each pair on the same storage (convostack on PostgreSQL against
    smg), with a table of its own unless the main table is that pair alone."""
    texts, verdicts = [], []
    for mine, peer in compared:
        if mine.get("storage") is None or mine.get("storage") != peer.get("storage"):
            continue
        text, rows = table([mine], [peer], [(mine, peer)])
        said = verdict(rows, mine["target"], peer["target"])
        alone = len(ours) == 1 and len(compared) == 1
        texts.append(f"Both on {mine['storage']}: {said}" + ("" if alone else f"\n\n{text}"))
        verdicts.append(said)
    return "\n\n".join(texts), verdicts


SCENARIOS = ("items_create", "items_list", "turn")


def growth_table(ours: JSONDict) -> str:
    """One of our targets' throughput and p99 latency by concurrent connections."""
    by_clients: JSONDict = get(ours, "throughput", "growth_by_connections") or {}
    if not by_clients:
        return ""
    header = "| connections | " + " | ".join(f"{s} req/s | {s} p99 ms" for s in SCENARIOS)
    lines = [header + " |", "|" + "---|" * (1 + 2 * len(SCENARIOS))]
    for clients, rows in by_clients.items():
        cells = [clients]
        for scenario in SCENARIOS:
            row: JSONDict = rows.get(scenario) or {}
            cells += [fmt(row.get("requests_per_s")), fmt(get(row, "latency_ms", "p99"))]
        lines.append("| " + " | ".join(cells) + " |")
    return f"{ours['target']} by concurrent connections:\n" + "\n".join(lines)
