"""An SQLite index of the recordings, beside them (`<recording dir>/index.sqlite`): one
row per recording file with its test id, endpoint, model and when it was recorded.

The recorder adds (or replaces) a row for every file it writes. The index is derived
data: the JSON files are the truth and are what gets committed, so the index is not
(.gitignore); `sync` rebuilds what is missing or stale from the files (their mtime as
recorded_at), as `convostack recordings` does before it answers.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

INDEX_NAME = "index.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS recordings (
    path TEXT PRIMARY KEY,          -- relative to the recording folder
    test_id TEXT,
    endpoint TEXT NOT NULL,
    model TEXT,
    recorded_at TEXT NOT NULL,      -- ISO 8601, UTC
    size INTEGER NOT NULL
)
"""


@dataclass(frozen=True)
class Entry:
    path: str
    test_id: str | None
    endpoint: str
    model: str | None
    recorded_at: str
    size: int


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RecordingIndex:
    def __init__(self, directory: Path):
        self.directory = directory
        self.path = directory / INDEX_NAME

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.directory.mkdir(parents=True, exist_ok=True)
        # Several processes may record at once (a spawned server and pytest): wait.
        connection = sqlite3.connect(self.path, timeout=30)
        try:
            connection.execute(_SCHEMA)
            with connection:
                yield connection
        finally:
            connection.close()

    def add(self, file: Path, record: dict[str, object], recorded_at: str | None = None) -> None:
        request = record.get("request")
        model = request.get("model") if isinstance(request, dict) else None
        row = (
            file.relative_to(self.directory).as_posix(),
            record.get("test_id"),
            str(record.get("endpoint", "?")),
            str(model) if model is not None else None,
            recorded_at or _now(),
            file.stat().st_size,
        )
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO recordings VALUES (?, ?, ?, ?, ?, ?)", row)

    def sync(self) -> None:
        """Rows for files written without the recorder (or before the index existed),
        none for files that are gone."""
        files = {p.relative_to(self.directory).as_posix(): p for p in self._files()}
        with self._connect() as db:
            known = {row[0] for row in db.execute("SELECT path FROM recordings")}
            gone = known - files.keys()
            db.executemany("DELETE FROM recordings WHERE path = ?", [(p,) for p in gone])
        for relative in files.keys() - known:
            file = files[relative]
            with contextlib.suppress(OSError, orjson.JSONDecodeError):
                mtime = datetime.fromtimestamp(file.stat().st_mtime, UTC)
                self.add(file, orjson.loads(file.read_bytes()), mtime.isoformat(timespec="seconds"))

    def _files(self) -> Iterator[Path]:
        return (p for p in self.directory.rglob("*.json") if p.is_file())

    def entries(self, test: str | None = None) -> list[Entry]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT path, test_id, endpoint, model, recorded_at, size FROM recordings "
                "WHERE ? IS NULL OR instr(coalesce(test_id, ''), ?) > 0 OR instr(path, ?) > 0 "
                "ORDER BY test_id, path",
                (test, test, test),
            ).fetchall()
        return [Entry(*row) for row in rows]

    def remove(self, entries: list[Entry]) -> None:
        for entry in entries:
            (self.directory / entry.path).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # the test's folder, once empty
                (self.directory / entry.path).parent.rmdir()
        with self._connect() as db:
            db.executemany("DELETE FROM recordings WHERE path = ?", [(e.path,) for e in entries])
