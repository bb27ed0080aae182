"""Soak: mixed traffic from many clients against a spawned convostack whose upstream fails
at random, then a check that every conversation is consistent.

Everything runs on 127.0.0.1 and stops by itself: a fake upstream
(`convostack.testing.fake_upstream`) and `convostack serve` (SQLite, API keys for two
principals) are spawned; CLIENTS asyncio clients run turns (streamed or not), item
appends, listings, retrievals, chat completions, deletions and cross-tenant probes for
DURATION seconds; a share of the turns carry a fault the fake upstream obeys (HTTP 500 or
400, a dropped connection, an error chunk, a timeout before or during a stream) or a
client that leaves mid-stream. Each client keeps a model of what its conversations must
hold; several conversations are shared by all the clients of a principal, so turns
overlap on them.

Then the server is stopped with SIGTERM and started again on the same database, and every
conversation is read back through the API and compared with the model:

- nothing lost: every turn and append the server confirmed is there, whole;
- nothing half-written: a turn's input and output are adjacent (user, then its echo);
  a failed turn left nothing; a turn whose outcome the client could not know (it left
  mid-stream) is all there or not at all;
- nothing duplicated or stray: every item is accounted for once, every id is unique;
- on a conversation with one writer, the order is the order of the confirmations, and
  the model saw exactly the history the conversation had (the echo's message count);
- stored responses match the conversation's items; other principals get 404s.

It prints one JSON summary: requests served, faults injected, inconsistencies found (and
the first few described), the server's RSS over the run, its CPU time, the load average.

    python bench/soak.py [--duration 180] [--clients 32] [--fault-rate 0.2] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from common import cpu_seconds, free_port, log, rss_bytes
from soak_clients import (
    ABSENT,
    COMMITTED,
    FAKE,
    FAULTS,
    KEYS,
    REQUEST_TIMEOUT_S,
    SHARED_PER_PRINCIPAL,
    SLOW,
    UNKNOWN,
    Client,
    Conversation,
    Tally,
    output_text,
    text_matches,
)

MAX_DURATION_S = 1800


def rss_mib(pid: int) -> float:
    return round(rss_bytes(pid) / 2**20, 1)


def wal_mib(path: Path) -> float:
    try:
        return round(path.stat().st_size / 2**20, 1)
    except OSError:
        return 0.0


# --- the processes ----------------------------------------------------------------------


class Server:
    """`convostack serve` on a SQLite file, with the soak's keys and providers."""

    def __init__(self, home: Path, upstream: str, max_items: int | None = None):
        self.home = home
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = {
            "host": "127.0.0.1",
            "port": self.port,
            "db": f"sqlite:///{home / 'soak.db'}",
            "log_level": "warning",
            **({"max_items_per_conversation": max_items} if max_items else {}),
            "api_keys": [{"sha256": _sha(k), "principal": p} for k, p in KEYS.items()],
            "providers": [
                {
                    "type": "openai_compat",
                    "id": "fake",
                    "base_url": upstream,
                    "max_retries": 1,
                    "models": [FAKE],
                },
                {
                    "type": "openai_compat",
                    "id": "slow",
                    "base_url": upstream,
                    "max_retries": 0,
                    "models": [SLOW],
                    "timeout": 1.0,
                },
            ],
        }
        (home / "config.yaml").write_text(yaml.safe_dump(config))
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = home / "server.log"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONVOSTACK_")}
        argv = [
            sys.executable,
            "-m",
            "convostack",
            "serve",
            "--config",
            str(self.home / "config.yaml"),
        ]
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**env, "CONVOSTACK_HOME": str(self.home)},
            )
        _wait_healthy(self.base + "/v1/health", self.process)

    def stop(self) -> tuple[int, float]:
        """SIGTERM; the exit code and the seconds it took."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        return code, round(time.monotonic() - started, 2)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


def _sha(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"no answer from {url}")


@contextlib.contextmanager
def fake_upstream(home: Path) -> Any:
    """The fake upstream in a process of its own; yields its URL and the process."""
    port = free_port()
    with (home / "fake-upstream.log").open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "convostack.testing.fake_upstream", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/v1/models", process)
        yield f"http://127.0.0.1:{port}/v1", process
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- the check --------------------------------------------------------------------------


async def read_all(
    session: aiohttp.ClientSession, base: str, key: str, conversation_id: str
) -> tuple[int, list[dict[str, Any]]]:
    headers = {"authorization": f"Bearer {key}"}
    items: list[dict[str, Any]] = []
    after = ""
    for _ in range(10_000):
        query = f"?order=asc&limit=100{'&after=' + after if after else ''}"
        async with session.get(
            f"{base}/v1/conversations/{conversation_id}/items{query}", headers=headers
        ) as response:
            if response.status != 200:
                return response.status, items
            page = await response.json()
        items += page["data"]
        if not page["has_more"]:
            return 200, items
        after = page["last_id"]
    raise RuntimeError("pagination did not end")


def check_conversation(
    conversation: Conversation, items: list[dict[str, Any]], tally: Tally
) -> None:
    where = f"{conversation.id} ({'shared' if conversation.shared else 'one writer'})"
    ids = [item["id"] for item in items]
    if len(set(ids)) != len(ids):
        tally.problem(f"{where}: an item id appears twice")
    texts = [item["content"][0]["text"] for item in items]
    roles = [item["role"] for item in items]
    position = {text: n for n, text in enumerate(texts)}
    if len(position) != len(texts):
        tally.problem(f"{where}: an item appears twice")
    claimed: set[int] = set()
    order: list[int] = []
    fault_texts = {f[0] for f in FAULTS}
    for deleted in conversation.deleted:
        if deleted in position:
            tally.problem(f"{where}: deleted item {deleted!r} is back")
    for block in conversation.blocks:
        wanted = block.items()
        gone = [conversation.gone_item(text) for text in wanted]
        found = [_find(texts, text) for text in wanted]
        present = [n for n in found if n is not None]
        required = [n for n, g in zip(found, gone, strict=True) if g is None]
        if block.texts[0] in fault_texts and present:
            tally.problem(f"{where}: the failed turn {block.texts[0]!r} left items")
            continue
        if block.status == ABSENT and present:
            tally.problem(f"{where}: refused write {block.texts} is there")
        elif block.status == COMMITTED and None in required:
            tally.problem(f"{where}: confirmed write {block.texts} lost (found {found})")
        elif block.status == UNKNOWN and present and None in required:
            tally.problem(f"{where}: write {block.texts} half there (found {found})")
        if present and present != list(range(present[0], present[0] + len(present))):
            tally.problem(f"{where}: the items of {block.texts} are not adjacent and in order")
        turn_roles = [roles[n] for n in present] if block.kind == "turn" else []
        if len(turn_roles) == 2 and turn_roles != ["user", "assistant"]:
            tally.problem(f"{where}: turn {block.texts[0]!r} has roles out of place")
        claimed.update(present)
        if present:
            order.append(present[0])
    stray = set(range(len(texts))) - claimed
    if stray:
        tally.problem(f"{where}: {len(stray)} items nobody wrote, e.g. {texts[min(stray)]!r}")
    if not conversation.shared and order != sorted(order):
        tally.problem(f"{where}: writes are not in the order they were confirmed")


def _find(texts: list[str], wanted: str) -> int | None:
    matches = [n for n, text in enumerate(texts) if text_matches(text, wanted)]
    return matches[0] if matches else None


async def check_all(
    base: str, clients: list[Client], shared: list[Conversation], tally: Tally
) -> dict[str, int]:
    key_of = {principal: key for key, principal in KEYS.items()}
    other = {"team-a": key_of["team-b"], "team-b": key_of["team-a"]}
    counts = collections.Counter[str]()
    conversations = [c for client in clients for c in client.owned] + shared
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        for conversation in conversations:
            key = key_of[conversation.principal]
            status, items = await read_all(session, base, key, conversation.id)
            if conversation.gone:
                counts["deleted conversations"] += 1
                if status != 404:
                    tally.problem(f"deleted {conversation.id}: HTTP {status}")
                continue
            if status != 200:
                tally.problem(f"{conversation.id}: HTTP {status} after the restart")
                continue
            counts["conversations"] += 1
            counts["items"] += len(items)
            counts["largest conversation"] = max(counts["largest conversation"], len(items))
            check_conversation(conversation, items, tally)
            texts = {item["content"][0]["text"] for item in items}
            for block in conversation.blocks:
                if block.status != COMMITTED or block.response_id is None:
                    continue
                counts["stored responses"] += 1
                async with session.get(
                    f"{base}/v1/responses/{block.response_id}",
                    headers={"authorization": f"Bearer {key}"},
                ) as response:
                    stored = await response.json()
                text = output_text(stored) if response.status == 200 else None
                if text is None or (text not in texts and not conversation.deleted):
                    tally.problem(f"stored response {block.response_id} does not match")
            async with session.get(
                f"{base}/v1/conversations/{conversation.id}",
                headers={"authorization": f"Bearer {other[conversation.principal]}"},
            ) as response:
                if response.status != 404:
                    tally.problem(f"{conversation.id} visible to another principal")
    return dict(counts)


# --- the run ----------------------------------------------------------------------------


async def traffic(
    base: str,
    args: argparse.Namespace,
    tally: Tally,
    rss: list[tuple[float, float, float]],
    pid: int,
    wal: Path,
) -> tuple[list[Client], list[Conversation]]:
    rng = random.Random(args.seed)
    connector = aiohttp.TCPConnector(limit=args.clients * 2)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # The conversations each principal's clients share: one list per principal, which
        # its clients extend when one is full.
        pools: dict[str, list[Conversation]] = {}
        for key, principal in list(KEYS.items())[::2]:
            for _ in range(SHARED_PER_PRINCIPAL):
                async with session.post(
                    f"{base}/v1/conversations", json={}, headers={"authorization": f"Bearer {key}"}
                ) as response:
                    created = Conversation((await response.json())["id"], principal, True)
                    pools.setdefault(principal, []).append(created)
        keys = list(KEYS)
        clients = [
            Client(
                n,
                keys[n % len(keys)],
                base,
                pools[KEYS[keys[n % len(keys)]]],
                tally,
                random.Random(rng.random()),
                args.fault_rate,
            )
            for n in range(args.clients)
        ]
        for client in clients:
            client.foreign = [
                c.id for p, pool in pools.items() if p != client.principal for c in pool
            ]
        started = time.monotonic()
        deadline = started + args.duration

        async def sample() -> None:
            while time.monotonic() < deadline:
                rss.append((round(time.monotonic() - started, 1), rss_mib(pid), wal_mib(wal)))
                await asyncio.sleep(min(10.0, args.duration / 10))

        sampler = asyncio.create_task(sample())
        await asyncio.wait_for(
            asyncio.gather(*(client.run(session, deadline) for client in clients)),
            args.duration + REQUEST_TIMEOUT_S * 4,
        )
        sampler.cancel()
        rss.append((round(time.monotonic() - started, 1), rss_mib(pid), wal_mib(wal)))
        return clients, [c for pool in pools.values() for c in pool]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=180.0, help="Seconds of traffic.")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument(
        "--fault-rate", type=float, default=0.2, help="Share of turns whose upstream call fails."
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="Keep the database and logs.")
    parser.add_argument(
        "--max-items",
        type=int,
        default=2000,
        help="The server's max_items_per_conversation (0: the server's default, 10,000). A "
        "full conversation is replaced by a new one. A turn reads its conversation's whole "
        "history, so the memory a turn needs grows with the conversation: bounded, so is it.",
    )
    args = parser.parse_args(argv)
    args.duration = min(max(args.duration, 5.0), MAX_DURATION_S)
    tally = Tally()
    rss: list[tuple[float, float, float]] = []  # seconds, server RSS, WAL size (MiB)
    load_before = os.getloadavg()[0]
    home = Path(tempfile.mkdtemp(prefix="convostack-soak-"))
    with fake_upstream(home) as (up, fake):
        server = Server(home, up, args.max_items or None)
        server.start()
        pid = server.pid
        rss_start = rss_mib(pid)
        cpu_start = cpu_seconds(pid)
        log(f"soak: {args.clients} clients for {args.duration:g} s against {server.base}")
        started = time.monotonic()
        wal = home / "soak.db-wal"
        clients, shared = asyncio.run(traffic(server.base, args, tally, rss, pid, wal))
        elapsed = time.monotonic() - started
        cpu_used = cpu_seconds(pid) - cpu_start
        fake_exit = fake.poll()  # None: the fake upstream lived through it all
        exit_code, stop_s = server.stop()
        log("soak: stopped with SIGTERM; restarting on the same database to check it")
        server.start()
        counts = asyncio.run(check_all(server.base, clients, shared, tally))
        server.stop()
        conn = sqlite3.connect(home / "soak.db")
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        conn.close()
        tracebacks = server.log_path.read_text(errors="replace").count("Traceback")
    served = sum(tally.requests.values())
    summary = {
        "benchmark": "soak",
        "duration_s": round(elapsed, 1),
        "clients": args.clients,
        "fault_rate": args.fault_rate,
        "seed": args.seed,
        "max_items_per_conversation": args.max_items,
        "requests_served": served,
        "requests_per_s": round(served / elapsed, 1),
        "requests": dict(tally.requests.most_common()),
        "statuses": dict(sorted(tally.statuses.items())),
        "faults_injected": sum(tally.faults.values()),
        "faults": dict(tally.faults.most_common()),
        "turn_outcomes": dict(tally.outcomes.most_common()),
        "checked": counts,
        "inconsistencies": len(tally.problems),
        "first_inconsistencies": tally.problems[:10],
        "server_rss_mib": {
            "start": rss_start,
            "end": rss[-1][1] if rss else None,
            "peak": max(v for _, v, _ in rss) if rss else None,
        },
        "sqlite_wal_mib": {"end": rss[-1][2] if rss else None},
        "samples_s_rss_wal": rss,
        "server_cpu_s": round(cpu_used, 1),
        "server_cpu_ms_per_request": round(cpu_used * 1000 / max(served, 1), 3),
        "sigterm_exit_code": exit_code,
        "sigterm_stop_s": stop_s,
        "sqlite_integrity": integrity,
        "tracebacks_in_server_log": tracebacks,
        "fake_upstream_exit": fake_exit,
        "load_average_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary), flush=True)
    ok = not tally.problems and exit_code == 0 and integrity == "ok" and fake_exit is None
    if ok and not args.keep:
        shutil.rmtree(home, ignore_errors=True)
    else:
        log(f"soak: the database and the logs are in {home}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
