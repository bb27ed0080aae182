"""A database that is briefly unavailable (another process holds SQLite's write lock for
longer than the server's busy timeout): writes get a 503 in the OpenAI body and leave
nothing half-written; reads go on; once the lock is gone, the server recovers by itself.
"""

from __future__ import annotations

import concurrent.futures
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from convostack.storage.sqlite import BUSY_TIMEOUT_MS
from convostack.testing.upstream import FAKE_MODEL

# Held for a little longer than the server waits for it, so that its writes time out.
LOCK_SECONDS = BUSY_TIMEOUT_MS / 1000 + 2.0


@contextmanager
def locked(database: Path) -> Iterator[threading.Event]:
    """Hold SQLite's write lock from another connection; yields once it is held, and
    releases it LOCK_SECONDS later (the event is set then)."""
    held, released = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(database, timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            held.set()
            time.sleep(LOCK_SECONDS)
            conn.execute("ROLLBACK")
        finally:
            conn.close()
            released.set()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(30), "could not take the database's write lock"
    try:
        yield released
    finally:
        thread.join(60)


def _items(client: openai.OpenAI, conversation_id: str) -> list[Any]:
    return [i.model_dump() for i in client.conversations.items.list(conversation_id, limit=100)]


def _stream_outcome(http: httpx2.Client, body: dict[str, Any], headers: dict[str, str]) -> str:
    with http.stream("POST", "/v1/responses", json={**body, "stream": True},
                     headers=headers) as response:  # fmt: skip
        if response.status_code != 200:
            return str(response.status_code)
        last = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                last = line.removeprefix("event: ")
        return last


def test_writes_get_503_while_the_database_is_locked_and_recover(
    sqlite_file: Path,
    http: httpx2.Client,
    client: openai.OpenAI,
    headers_a: dict[str, str],
) -> None:
    conversation = client.conversations.create(items=[{"role": "user", "content": "before"}]).id
    before = _items(client, conversation)
    writes: dict[str, Callable[[], Any]] = {
        "items.create": lambda: http.post(
            f"/v1/conversations/{conversation}/items",
            json={"items": [{"role": "user", "content": "during-items"}]}, headers=headers_a),
        "turn": lambda: http.post(
            "/v1/responses", json={"model": FAKE_MODEL, "input": "during-turn",
                                   "conversation": conversation}, headers=headers_a),
        "streamed turn": lambda: _stream_outcome(
            http, {"model": FAKE_MODEL, "input": "during-stream", "conversation": conversation},
            headers_a),
        "update": lambda: http.post(f"/v1/conversations/{conversation}",
                                    json={"metadata": {"x": "y"}}, headers=headers_a),
        "create": lambda: http.post("/v1/conversations", json={}, headers=headers_a),
    }  # fmt: skip
    with locked(sqlite_file), concurrent.futures.ThreadPoolExecutor(len(writes) + 1) as pool:
        started = time.monotonic()
        futures = {name: pool.submit(write) for name, write in writes.items()}
        # Reads do not wait for the write lock (WAL).
        read = http.get(f"/v1/conversations/{conversation}/items", headers=headers_a)
        assert read.status_code == 200
        assert time.monotonic() - started < BUSY_TIMEOUT_MS / 1000
        outcomes = {name: future.result(timeout=60) for name, future in futures.items()}

    # Each write either got a 503 (and wrote nothing) or, queued behind the first failed
    # attempt, went through once the lock was gone: never anything in between.
    refused = set()
    for name, outcome in outcomes.items():
        if name == "streamed turn":
            assert outcome in ("response.failed", "response.completed"), outcome
            if outcome == "response.failed":
                refused.add(name)
            continue
        assert outcome.status_code in (200, 503), (name, outcome.text)
        if outcome.status_code == 503:
            refused.add(name)
            error = outcome.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert error["type"] == "server_error"
            assert "database is briefly unavailable" in error["message"]
            assert outcome.headers["retry-after"] == "1"
    assert refused, "no write noticed the outage"
    texts = [item["content"][0]["text"] for item in reversed(_items(client, conversation))]
    expected = {
        "items.create": ["during-items"],
        "turn": ["during-turn", "echo: during-turn ["],
        "streamed turn": ["during-stream", "echo: during-stream ["],
    }
    found = texts[: len(before)]
    assert found == ["before"]
    rest = texts[len(before) :]
    for name, block in expected.items():
        where = [n for n, text in enumerate(rest) if text.startswith(block[0])]
        if name in refused:
            assert where == [], (name, rest)
            continue
        assert len(where) == 1, (name, rest)  # once, whole and adjacent
        assert [t[: len(b)] for t, b in zip(rest[where[0] :], block, strict=False)] == block
    assert sum(len(b) for n, b in expected.items() if n not in refused) == len(rest)
    metadata = client.conversations.retrieve(conversation).metadata
    assert metadata == ({} if "update" in refused else {"x": "y"})

    # Recovered, with no restart: writes go through again.
    assert writes["items.create"]().status_code == 200
    assert writes["turn"]().status_code == 200
    assert writes["streamed turn"]() == "response.completed"
    assert len(_items(client, conversation)) == len(before) + len(rest) + 5
    check = sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        check.close()


def test_a_lock_shorter_than_the_busy_timeout_only_delays(
    sqlite_file: Path, client: openai.OpenAI
) -> None:
    conversation = client.conversations.create().id
    conn = sqlite3.connect(sqlite_file, timeout=30, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        timer = threading.Timer(1.0, lambda: conn.execute("ROLLBACK"))
        timer.start()
        started = time.monotonic()
        client.conversations.items.create(conversation, items=[{"role": "user", "content": "x"}])
        assert time.monotonic() - started >= 0.9
        timer.join()
    finally:
        conn.close()
    assert len(_items(client, conversation)) == 1


@pytest.fixture(autouse=True)
def _quiet_store_warnings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("ERROR", logger="convostack.storage")
