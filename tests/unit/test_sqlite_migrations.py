"""A database made by an older convostack opens in this one, its data intact."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from convostack.storage import migrations
from convostack.storage.base import ConversationRow, NewItem
from convostack.storage.sqlite import SqliteStore, _statements

OWNER = "default"


def _older_database(path: Path, up_to: int) -> None:
    """The schema as migrations 1 to `up_to` left it, with a conversation of three items,
    the second deleted (a tombstone), written the way that version wrote them."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(
        "CREATE TABLE schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
    )
    for migration in migrations.load("sqlite"):
        if migration.version > up_to:
            break
        for statement in _statements(migration.sql):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?, ?, ?)",
            (migration.version, migration.name, int(time.time())),
        )
    conn.execute(
        "INSERT INTO conversations (id, owner, created_at, metadata, next_seq) "
        "VALUES ('conv_old', ?, 1, '{}', 3)",
        (OWNER,),
    )
    for seq, body in enumerate((b'{"id":"a"}', None, b'{"id":"c"}')):
        conn.execute(
            "INSERT INTO items VALUES ('conv_old', ?, ?, 'message', 1, ?)",
            (seq, "abc"[seq], body),
        )
    conn.close()


async def test_a_version_2_database_keeps_its_items_order_and_tombstones(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _older_database(path, up_to=2)
    store = SqliteStore(path)
    await store.start()
    try:
        assert await store.all_items(OWNER, "conv_old") == [b'{"id":"a"}', b'{"id":"c"}']
        await store.append_items(
            OWNER, "conv_old", [NewItem("d", "message", b'{"id":"d"}')], max_items=3
        )
        page = await store.list_items(OWNER, "conv_old", after="b", limit=10, order="asc")
        assert page.ids == ["c", "d"]
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT deleted_items FROM conversations").fetchall() == [(1,)]
    assert conn.execute("SELECT seq FROM items WHERE id = 'd'").fetchall() == [(3,)]
    conn.close()


# Opens the database as each worker of `serve --workers` does, and migrates it.
_MIGRATE = """
import sqlite3, sys
from convostack.storage.sqlite import _migrate
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA busy_timeout = 10000")
conn.execute("PRAGMA journal_mode = WAL")
_migrate(conn)
"""


def test_processes_starting_together_apply_each_migration_once(tmp_path: Path) -> None:
    path = str(tmp_path / "new.db")
    starting = [
        subprocess.Popen([sys.executable, "-c", _MIGRATE, path], stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    for process in starting:
        _, errors = process.communicate(timeout=60)
        assert process.returncode == 0, errors.decode()
    conn = sqlite3.connect(path)
    versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
    conn.close()
    assert versions == [m.version for m in migrations.load("sqlite")]


async def test_a_version_3_database_moves_its_items_out_of_the_key_btree(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    _older_database(path, up_to=3)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE conversations SET deleted_items = 1")
    conn.commit()
    conn.close()
    store = SqliteStore(path)
    await store.start()
    try:
        assert await store.all_items(OWNER, "conv_old") == [b'{"id":"a"}', b'{"id":"c"}']
        assert await store.get_item(OWNER, "conv_old", "c") == b'{"id":"c"}'
        await store.append_items(OWNER, "conv_old", [NewItem("d", "message", b'{"id":"d"}')])
        page = await store.list_items(OWNER, "conv_old", after="b", limit=10, order="asc")
        assert page.ids == ["c", "d"]
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    (schema,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'items'").fetchone()
    assert "WITHOUT ROWID" not in schema
    rows = conn.execute("SELECT seq, id, body IS NULL FROM items ORDER BY seq").fetchall()
    assert rows == [(0, "a", 0), (1, "b", 1), (2, "c", 0), (3, "d", 0)]
    conn.close()


async def test_a_version_3_database_lists_its_conversations_oldest_to_newest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    _older_database(path, up_to=3)
    conn = sqlite3.connect(path, isolation_level=None)
    # Made in this order, but numbered by (created_at, id): conv_new was created later.
    for conversation_id, created_at, owner in (
        ("conv_new", 9, OWNER), ("conv_mid", 5, OWNER), ("conv_other", 7, "someone-else"),
    ):  # fmt: skip
        conn.execute(
            "INSERT INTO conversations (id, owner, created_at, metadata) VALUES (?, ?, ?, '{}')",
            (conversation_id, owner, created_at),
        )
    conn.close()
    store = SqliteStore(path)
    await store.start()
    try:
        await store.create_conversation(OWNER, ConversationRow("conv_newest", 1, {}), [])
        page = await store.list_conversations(OWNER, after=None, limit=10, order="asc", metadata={})
        assert [row.id for row in page.rows] == ["conv_old", "conv_mid", "conv_new", "conv_newest"]
    finally:
        await store.close()
