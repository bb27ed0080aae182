"""Where uploaded files' bytes should live: a row in the SQLite database (WAL, synchronous
NORMAL, as the store runs it) or a file under the data folder (written, fsynced, renamed,
as a durable write must be). Prints a JSON summary: median milliseconds to store and to
read back one upload of each size. The choice is recorded in files/service.py.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

SIZES = (10_000, 1 << 20, 8 << 20)
ROUNDS = 15


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="file-storage-"))
    conn = sqlite3.connect(folder / "bench.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE files (id TEXT PRIMARY KEY, data BLOB NOT NULL)")
    summary = {}
    for size in SIZES:
        data = os.urandom(size)
        row_write, row_read, file_write, file_read = [], [], [], []
        for n in range(ROUNDS):
            key = f"{size}-{n}"
            start = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO files VALUES (?, ?)", (key, data))
            conn.execute("COMMIT")
            row_write.append(time.perf_counter() - start)
            start = time.perf_counter()
            conn.execute("SELECT data FROM files WHERE id = ?", (key,)).fetchone()
            row_read.append(time.perf_counter() - start)
            path = folder / key
            start = time.perf_counter()
            with open(path.with_suffix(".tmp"), "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            path.with_suffix(".tmp").rename(path)
            file_write.append(time.perf_counter() - start)
            start = time.perf_counter()
            path.read_bytes()
            file_read.append(time.perf_counter() - start)
        summary[str(size)] = {
            "row_write_ms": _median_ms(row_write), "row_read_ms": _median_ms(row_read),
            "file_write_fsync_ms": _median_ms(file_write), "file_read_ms": _median_ms(file_read),
        }  # fmt: skip
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
