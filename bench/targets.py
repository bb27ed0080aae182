"""The servers under test, behind one shape: a base URL, a model id, a process to measure.

convostack is started here, on SQLite or on a throwaway PostgreSQL (bench/pgserver.py);
each peer by its own launcher in `bench/peers/peers.py`, from the venv its install
script made. Every server talks to the same fake upstream.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    FAKE_MODEL,
    Client,
    Proc,
    convostack_serve,
    free_port,
    log,
    spawn,
    wait_healthy,
)
from pgserver import POSTGRES


@dataclass
class Target:
    name: str
    base: str  # http://127.0.0.1:PORT, no /v1
    model: str
    proc: Proc
    startup_s: float
    # Which of the fake upstream's routes this server calls for a turn.
    upstream_route: str = "/v1/chat/completions"
    storage: str = "SQLite"
    note: str = ""
    # Connections used to create and fill conversations before measuring.
    seed_workers: int = 8
    # CPU seconds so far of a database server apart from the target (PostgreSQL): not
    # the target's, reported beside it.
    database_cpu_s: Callable[[], float] | None = None
    database_url: str = ""  # when it is on the throwaway PostgreSQL

    def client(self, timeout_s: float = 120.0) -> Client:
        return Client(self.base, timeout_s)

    def turn_body(self, conversation_id: str, text: str = "hello", **extra: Any) -> dict[str, Any]:
        return {"model": self.model, "conversation": conversation_id, "input": text, **extra}


# A launcher starts a server on a port against an upstream base URL (ending in /v1) and
# returns it healthy; `work` is a scratch folder for its database and logs.
Launcher = Callable[[int, str, Path], Target]


def launch_convostack(port: int, upstream: str, work: Path) -> Target:
    proc = convostack_serve(port, work / "home", upstream, work / "logs")
    startup = wait_healthy(proc, f"http://127.0.0.1:{port}/v1/health", timeout_s=60)
    return Target("convostack", f"http://127.0.0.1:{port}", FAKE_MODEL, proc, startup)


def launch_convostack_postgres(port: int, upstream: str, work: Path) -> Target:
    """`convostack serve --db postgresql://...` on a new database of the throwaway server
    (started on first use; its default pool settings, as a user would get them)."""
    url = POSTGRES.database().replace("postgres://", "postgresql://", 1)
    proc = convostack_serve(port, work / "home", upstream, work / "logs", db=url)
    startup = wait_healthy(proc, f"http://127.0.0.1:{port}/v1/health", timeout_s=60)
    return Target(
        "convostack-pg",
        f"http://127.0.0.1:{port}",
        FAKE_MODEL,
        proc,
        startup,
        storage="PostgreSQL",
        note="convostack serve --db postgresql://... (pool 2-10), PostgreSQL not counted",
        database_cpu_s=POSTGRES.cpu_s,
        database_url=url,
    )


def launch_convostack_workers(port: int, upstream: str, work: Path) -> Target:
    """`convostack serve --workers 2` on SQLite: a process per core of this machine."""
    proc = convostack_serve(port, work / "home", upstream, work / "logs", workers=2)
    startup = wait_healthy(proc, f"http://127.0.0.1:{port}/v1/health", timeout_s=60)
    return Target(
        "convostack-2w",
        f"http://127.0.0.1:{port}",
        FAKE_MODEL,
        proc,
        startup,
        note="convostack serve --workers 2, SQLite; both workers counted",
    )


# convostack's own targets by the name of their storage (bench/run.py --ours).
OURS: dict[str, tuple[str, Launcher]] = {
    "sqlite": ("convostack", launch_convostack),
    "postgres": ("convostack-pg", launch_convostack_postgres),
    "sqlite-2w": ("convostack-2w", launch_convostack_workers),
}


# A venv with convostack and granian (pip install -e . granian), for the server comparison.
GRANIAN = Path(os.environ.get("BENCH_GRANIAN_VENV", "/tmp/granian-venv")) / "bin" / "granian"


def launch_convostack_granian(port: int, upstream: str, work: Path) -> Target:
    """The same app under granian (Rust HTTP, one worker, uvloop) instead of uvicorn."""
    home = work / "home"
    env = {
        "CONVOSTACK_HOME": str(home),
        "CONVOSTACK_DB": f"sqlite:///{home / 'bench.db'}",
        "CONVOSTACK_UPSTREAM": upstream,
        "CONVOSTACK_MAX_ITEMS_PER_CONVERSATION": "100000",
    }
    argv = [
        str(GRANIAN), "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--loop", "uvloop", "--http", "1", "--no-ws",
        "--log-level", "warning", "granian_app:app",
    ]  # fmt: skip
    proc = spawn("convostack-granian", argv, work / "logs", env=env, cwd=Path(__file__).parent)
    startup = wait_healthy(proc, f"http://127.0.0.1:{port}/v1/health", timeout_s=60)
    return Target("convostack-granian", f"http://127.0.0.1:{port}", FAKE_MODEL, proc, startup)


@contextmanager
def running(launcher: Launcher, upstream: str, work: Path) -> Iterator[Target]:
    target = launcher(free_port(), upstream, work)
    try:
        yield target
    finally:
        target.proc.stop()


ITEM_TEXT = "hello there, this is a benchmark message"


def message(n: int) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": f"{ITEM_TEXT} {n}"}


SEED_ATTEMPTS = 3
SEED_TIMEOUT_S = 30.0


def _retrying(client: Client, method: str, path: str, body: Any) -> Any:
    """A set-up call, tried again (a few times, bounded) when a server fails it under the
    concurrent set-up load: seeding is not what is measured."""
    for attempt in range(SEED_ATTEMPTS):
        try:
            return client.json(method, path, body)
        except RuntimeError:
            if attempt == SEED_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


# A slow server gets fewer conversations to spread its load over: creating stops here.
CREATE_BUDGET_S = 60.0


def new_conversations(
    target: Target, count: int, workers: int | None = None, budget_s: float = CREATE_BUDGET_S
) -> list[str]:
    """`count` empty conversations, created over `workers` connections; fewer (but at
    least one per connection) when creating them takes longer than `budget_s`."""
    deadline = time.monotonic() + budget_s
    workers = min(workers or target.seed_workers, target.seed_workers)

    def make(chunk: range) -> list[str]:
        client = target.client(SEED_TIMEOUT_S)
        made: list[str] = []
        try:
            for _ in chunk:
                made.append(_retrying(client, "POST", "/v1/conversations", {})["id"])
                if time.monotonic() > deadline:
                    break
            return made
        finally:
            client.close()

    # The first alone: Llama Stack creates its conversations table on first use, and
    # concurrent first uses race (two fail with "no such table", then its store hangs).
    first = make(range(1))
    count -= 1
    if count <= 0:
        return first
    per = -(-count // workers)
    chunks = [range(start, min(count, start + per)) for start in range(0, count, per)]
    with ThreadPoolExecutor(workers) as pool:
        return first + [cid for ids in pool.map(make, chunks) for cid in ids]


def seed_items(target: Target, conversation_ids: list[str], per_conversation: int) -> None:
    """Append `per_conversation` user messages to each conversation, 20 per call."""

    def fill(ids: list[str]) -> None:
        client = target.client(SEED_TIMEOUT_S)
        try:
            for cid in ids:
                for start in range(0, per_conversation, 20):
                    items = [message(n) for n in range(start, min(per_conversation, start + 20))]
                    _retrying(client, "POST", f"/v1/conversations/{cid}/items", {"items": items})
        finally:
            client.close()

    workers = min(target.seed_workers, len(conversation_ids))
    groups = [conversation_ids[n::workers] for n in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(fill, groups))
    log(f"  seeded {len(conversation_ids)} conversation(s) with {per_conversation} items")
