"""Files, vector stores, chunks and the ingestion queue on SQLite: the SqliteStore's
methods for them (files_base.FileStore), run by its connections like every other call."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from convostack.retrieval.ranking import fts5_query
from convostack.storage import sqlite_pages as pages
from convostack.storage.base import Order
from convostack.storage.files_base import (
    FILE_COLUMNS,
    STORE_COLUMNS,
    STORE_FILE_COLUMNS,
    BatchMissing,
    BatchRow,
    Chunk,
    FileData,
    FileMissing,
    FileRow,
    FilesFull,
    IngestJob,
    NewStoreFile,
    StoreFileMissing,
    StoreFileRow,
    StoreVectors,
    VectorStoreMissing,
    VectorStoreRow,
    file_row,
    store_file_row,
    store_row,
    tally,
)

T = TypeVar("T")
Conn = sqlite3.Connection

_COUNTS = (
    "SELECT status, count(*), sum(usage_bytes) FROM vector_store_files "
    "WHERE vector_store_id = ? GROUP BY status"
)


def _store(conn: Conn, owner: str, vector_store_id: str) -> VectorStoreRow:
    row = conn.execute(
        f"SELECT {STORE_COLUMNS} FROM vector_stores WHERE id = ? AND owner = ?",
        (vector_store_id, owner),
    ).fetchone()
    if row is None:
        raise VectorStoreMissing(vector_store_id)
    return store_row(row, conn.execute(_COUNTS, (vector_store_id,)).fetchall())


def _store_file(conn: Conn, owner: str, vector_store_id: str, file_id: str) -> StoreFileRow:
    _store(conn, owner, vector_store_id)
    row = conn.execute(
        f"SELECT {STORE_FILE_COLUMNS} FROM vector_store_files "
        "WHERE vector_store_id = ? AND file_id = ?",
        (vector_store_id, file_id),
    ).fetchone()
    if row is None:
        raise StoreFileMissing(file_id)
    return store_file_row(row)


def _touch(conn: Conn, vector_store_id: str) -> None:
    """The store's chunks changed: cached copies of its vectors are stale."""
    conn.execute(
        "UPDATE vector_stores SET generation = generation + 1 WHERE id = ?", (vector_store_id,)
    )


# A file past its `expires_at` is gone for every read at once, by the database's clock;
# the sweep (files/expiry.py) deletes it later.
NOW = "CAST(strftime('%s', 'now') AS INTEGER)"
LIVE = f"(expires_at IS NULL OR expires_at > {NOW})"


def _remove_file(conn: Conn, vector_store_id: str, file_id: str) -> None:
    conn.execute(
        "DELETE FROM chunks WHERE vector_store_id = ? AND file_id = ?", (vector_store_id, file_id)
    )
    conn.execute(
        "DELETE FROM vector_store_files WHERE vector_store_id = ? AND file_id = ?",
        (vector_store_id, file_id),
    )
    _touch(conn, vector_store_id)


def _remove_from_stores(conn: Conn, owner: str, file_id: str) -> None:
    stores = conn.execute(
        "SELECT vector_store_id FROM vector_store_files WHERE file_id = ? AND owner = ?",
        (file_id, owner),
    ).fetchall()
    for (vector_store_id,) in stores:
        _remove_file(conn, vector_store_id, file_id)


def _add_files(
    conn: Conn,
    owner: str,
    vector_store_id: str,
    files: list[NewStoreFile],
    batch_id: str | None,
    now: int,
) -> None:
    for new in files:
        found = conn.execute(
            f"SELECT 1 FROM files WHERE id = ? AND owner = ? AND {LIVE}", (new.file_id, owner)
        ).fetchone()
        if found is None:
            raise FileMissing(new.file_id)
        conn.execute(
            "INSERT INTO vector_store_files (vector_store_id, file_id, owner, created_at, "
            "status, attributes, chunking, batch_id) VALUES (?, ?, ?, ?, 'in_progress', ?, ?, ?) "
            "ON CONFLICT (vector_store_id, file_id) DO UPDATE SET "
            "batch_id = coalesce(excluded.batch_id, batch_id)",
            (vector_store_id, new.file_id, owner, now, orjson.dumps(new.attributes),
             orjson.dumps(new.chunking), batch_id),
        )  # fmt: skip


def _batch(conn: Conn, owner: str, vector_store_id: str, batch_id: str) -> BatchRow:
    _store(conn, owner, vector_store_id)
    row = conn.execute(
        "SELECT id, vector_store_id, created_at, cancelled FROM file_batches "
        "WHERE id = ? AND vector_store_id = ?",
        (batch_id, vector_store_id),
    ).fetchone()
    if row is None:
        raise BatchMissing(batch_id)
    counts = conn.execute(
        "SELECT status, count(*), 0 FROM vector_store_files WHERE batch_id = ? GROUP BY status",
        (batch_id,),
    ).fetchall()
    return BatchRow(row[0], row[1], row[2], bool(row[3]), tally(counts)[0])


class SqliteFiles:
    """Mixed into SqliteStore, whose connection methods these use."""

    async def _read(self, operation: Callable[[Conn], T]) -> T:
        raise NotImplementedError

    async def _write(self, operation: Callable[[Conn], T]) -> T:
        raise NotImplementedError

    async def _read_in_thread(self, operation: Callable[[Conn], T]) -> T:
        raise NotImplementedError

    async def _write_in_thread(self, operation: Callable[[Conn], T]) -> T:
        raise NotImplementedError

    # -- files ------------------------------------------------------------------------
    async def create_file(
        self, owner: str, file: FileRow, data: bytes, *, max_total: int | None = None
    ) -> None:
        row = (file.id, owner, file.created_at, file.filename, file.purpose, file.bytes,
               file.expires_at, file.content_type, data)  # fmt: skip

        def op(conn: Conn) -> None:
            if max_total is not None:
                held = conn.execute(
                    "SELECT coalesce(sum(bytes), 0) FROM files WHERE owner = ?", (owner,)
                ).fetchone()[0]
                if held + file.bytes > max_total:
                    raise FilesFull(held)
            conn.execute(
                "INSERT INTO files (id, owner, created_at, filename, purpose, bytes, "
                "expires_at, content_type, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )

        await self._write_in_thread(op)

    async def list_files(
        self, owner: str, *, after: str | None, limit: int, order: Order, purpose: str | None
    ) -> tuple[list[FileRow], bool]:
        def op(conn: Conn) -> tuple[list[FileRow], bool]:
            rows, more = pages.page(
                conn, "files", FILE_COLUMNS, owner, after=after, limit=limit, order=order,
                where=f"AND {LIVE}" + (" AND purpose = ?" if purpose else ""),
                params=(purpose,) if purpose else (),
            )  # fmt: skip
            return [file_row(r) for r in rows], more

        return await self._read(op)

    async def get_file(self, owner: str, file_id: str) -> FileRow:
        def op(conn: Conn) -> FileRow:
            row = conn.execute(
                f"SELECT {FILE_COLUMNS} FROM files WHERE id = ? AND owner = ? AND {LIVE}",
                (file_id, owner),
            ).fetchone()
            if row is None:
                raise FileMissing(file_id)
            return file_row(row)

        return await self._read(op)

    async def file_data(self, owner: str, file_id: str) -> FileData:
        def op(conn: Conn) -> FileData:
            row = conn.execute(
                f"SELECT filename, content_type, data FROM files WHERE id = ? AND owner = ? "
                f"AND {LIVE}",
                (file_id, owner),
            ).fetchone()
            if row is None:
                raise FileMissing(file_id)
            return FileData(*row)

        return await self._read_in_thread(op)

    async def delete_file(self, owner: str, file_id: str) -> None:
        def op(conn: Conn) -> None:
            if not conn.execute(
                f"DELETE FROM files WHERE id = ? AND owner = ? AND {LIVE}", (file_id, owner)
            ).rowcount:
                raise FileMissing(file_id)
            _remove_from_stores(conn, owner, file_id)

        await self._write(op)

    async def delete_expired_files(self, now: int, limit: int) -> int:
        def op(conn: Conn) -> int:
            gone = conn.execute(
                "DELETE FROM files WHERE id IN (SELECT id FROM files WHERE expires_at <= ? "
                "LIMIT ?) RETURNING owner, id",
                (now, limit),
            ).fetchall()
            for owner, file_id in gone:
                _remove_from_stores(conn, owner, file_id)
            return len(gone)

        return await self._write(op)

    # -- vector stores ----------------------------------------------------------------
    async def create_vector_store(
        self, owner: str, store: VectorStoreRow, files: list[NewStoreFile], batch_id: str | None
    ) -> None:
        def op(conn: Conn) -> None:
            conn.execute(
                "INSERT INTO vector_stores (id, owner, created_at, name, metadata, "
                "expires_after, last_active_at, embedding_model, dimension) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (store.id, owner, store.created_at, store.name, orjson.dumps(store.metadata),
                 None if store.expires_after is None else orjson.dumps(store.expires_after),
                 store.last_active_at, store.embedding_model, store.dimension),
            )  # fmt: skip
            _add_files(conn, owner, store.id, files, batch_id, store.created_at)

        await self._write(op)

    async def list_vector_stores(
        self, owner: str, *, after: str | None, limit: int, order: Order
    ) -> tuple[list[VectorStoreRow], bool]:
        def op(conn: Conn) -> tuple[list[VectorStoreRow], bool]:
            rows, more = pages.page(
                conn, "vector_stores", STORE_COLUMNS, owner, after=after, limit=limit,
                order=order,
            )  # fmt: skip
            return [store_row(r, conn.execute(_COUNTS, (r[0],)).fetchall()) for r in rows], more

        return await self._read(op)

    async def get_vector_store(self, owner: str, vector_store_id: str) -> VectorStoreRow:
        return await self._read(lambda conn: _store(conn, owner, vector_store_id))

    async def update_vector_store(
        self, owner: str, vector_store_id: str, changes: dict[str, Any]
    ) -> VectorStoreRow:
        def op(conn: Conn) -> VectorStoreRow:
            _store(conn, owner, vector_store_id)
            if changes:
                assignments = ", ".join(f"{column} = ?" for column in changes)
                conn.execute(
                    f"UPDATE vector_stores SET {assignments} WHERE id = ?",
                    (*changes.values(), vector_store_id),
                )
            return _store(conn, owner, vector_store_id)

        return await self._write(op)

    async def delete_vector_store(self, owner: str, vector_store_id: str) -> None:
        def op(conn: Conn) -> None:
            if not conn.execute(
                "DELETE FROM vector_stores WHERE id = ? AND owner = ?", (vector_store_id, owner)
            ).rowcount:
                raise VectorStoreMissing(vector_store_id)
            for table in ("chunks", "vector_store_files", "file_batches"):
                conn.execute(f"DELETE FROM {table} WHERE vector_store_id = ?", (vector_store_id,))

        await self._write(op)

    # -- files in stores --------------------------------------------------------------
    async def add_store_files(
        self, owner: str, vector_store_id: str, files: list[NewStoreFile], batch_id: str | None
    ) -> None:
        def op(conn: Conn) -> None:
            store = _store(conn, owner, vector_store_id)
            now = max(store.created_at, _now(conn))
            if batch_id is not None:
                conn.execute(
                    "INSERT INTO file_batches (id, owner, vector_store_id, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (batch_id, owner, vector_store_id, now),
                )
            _add_files(conn, owner, vector_store_id, files, batch_id, now)

        await self._write(op)

    async def list_store_files(
        self,
        owner: str,
        vector_store_id: str,
        *,
        after: str | None,
        limit: int,
        order: Order,
        status: str | None,
        batch_id: str | None,
    ) -> tuple[list[StoreFileRow], bool]:
        def op(conn: Conn) -> tuple[list[StoreFileRow], bool]:
            if batch_id is not None:
                _batch(conn, owner, vector_store_id, batch_id)
            else:
                _store(conn, owner, vector_store_id)
            rows, more = pages.page(
                conn, "vector_store_files", STORE_FILE_COLUMNS, vector_store_id, after=after,
                limit=limit, order=order, scope="vector_store_id", key="file_id",
                where="AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR batch_id = ?4)",
                params=(status, batch_id),
            )  # fmt: skip
            return [store_file_row(r) for r in rows], more

        return await self._read(op)

    async def get_store_file(self, owner: str, vector_store_id: str, file_id: str) -> StoreFileRow:
        return await self._read(lambda conn: _store_file(conn, owner, vector_store_id, file_id))

    async def update_store_file(
        self, owner: str, vector_store_id: str, file_id: str, attributes: dict[str, Any]
    ) -> StoreFileRow:
        def op(conn: Conn) -> StoreFileRow:
            _store_file(conn, owner, vector_store_id, file_id)
            conn.execute(
                "UPDATE vector_store_files SET attributes = ? "
                "WHERE vector_store_id = ? AND file_id = ?",
                (orjson.dumps(attributes), vector_store_id, file_id),
            )
            return _store_file(conn, owner, vector_store_id, file_id)

        return await self._write(op)

    async def delete_store_file(self, owner: str, vector_store_id: str, file_id: str) -> None:
        def op(conn: Conn) -> None:
            _store_file(conn, owner, vector_store_id, file_id)
            _remove_file(conn, vector_store_id, file_id)

        await self._write(op)

    async def store_file_chunks(self, owner: str, vector_store_id: str, file_id: str) -> list[str]:
        def op(conn: Conn) -> list[str]:
            _store_file(conn, owner, vector_store_id, file_id)
            rows = conn.execute(
                "SELECT text FROM chunks WHERE vector_store_id = ? AND file_id = ? ORDER BY seq",
                (vector_store_id, file_id),
            ).fetchall()
            return [r[0] for r in rows]

        return await self._read_in_thread(op)

    async def get_batch(self, owner: str, vector_store_id: str, batch_id: str) -> BatchRow:
        return await self._read(lambda conn: _batch(conn, owner, vector_store_id, batch_id))

    async def cancel_batch(self, owner: str, vector_store_id: str, batch_id: str) -> BatchRow:
        def op(conn: Conn) -> BatchRow:
            _batch(conn, owner, vector_store_id, batch_id)
            conn.execute("UPDATE file_batches SET cancelled = 1 WHERE id = ?", (batch_id,))
            conn.execute(
                "UPDATE vector_store_files SET status = 'cancelled', lease_until = NULL "
                "WHERE batch_id = ? AND status = 'in_progress'",
                (batch_id,),
            )
            return _batch(conn, owner, vector_store_id, batch_id)

        return await self._write(op)

    # -- ingestion --------------------------------------------------------------------
    async def claim_ingest(
        self, now: int, lease_seconds: int, embedder: tuple[str, int]
    ) -> IngestJob | None:
        def op(conn: Conn) -> IngestJob | None:
            row = conn.execute(
                "UPDATE vector_store_files SET lease_until = ?1, attempts = attempts + 1 "
                "WHERE pos = (SELECT f.pos FROM vector_store_files f "
                "JOIN vector_stores s ON s.id = f.vector_store_id "
                "WHERE f.status = 'in_progress' AND (f.lease_until IS NULL OR f.lease_until < ?2) "
                "AND ((s.embedding_model = ?3 AND s.dimension = ?4) OR f.created_at < ?5) "
                "ORDER BY f.pos LIMIT 1) "
                "RETURNING owner, vector_store_id, file_id, attempts, chunking",
                (now + lease_seconds, now, *embedder, now - lease_seconds),
            ).fetchone()
            if row is None:
                return None
            model, dimension = conn.execute(
                "SELECT embedding_model, dimension FROM vector_stores WHERE id = ?", (row[1],)
            ).fetchone()
            return IngestJob(row[0], row[1], row[2], row[3], orjson.loads(row[4]), model, dimension)

        return await self._write(op)

    async def renew_ingest(self, job: IngestJob, until: int) -> bool:
        def op(conn: Conn) -> bool:
            return bool(conn.execute(
                "UPDATE vector_store_files SET lease_until = ? WHERE vector_store_id = ? "
                "AND file_id = ? AND status = 'in_progress' AND attempts = ?",
                (until, job.vector_store_id, job.file_id, job.attempts),
            ).rowcount)  # fmt: skip

        return await self._write(op)

    async def finish_ingest(
        self, job: IngestJob, texts: list[str], vectors: list[bytes], usage_bytes: int
    ) -> bool:
        def op(conn: Conn) -> bool:
            held = conn.execute(
                "UPDATE vector_store_files SET status = 'completed', lease_until = NULL, "
                "usage_bytes = ?, last_error = NULL WHERE vector_store_id = ? AND file_id = ? "
                "AND status = 'in_progress' AND attempts = ?",
                (usage_bytes, job.vector_store_id, job.file_id, job.attempts),
            ).rowcount
            if not held:
                return False
            conn.executemany(
                "INSERT INTO chunks (vector_store_id, file_id, seq, text, vector) "
                "VALUES (?, ?, ?, ?, ?)",
                [(job.vector_store_id, job.file_id, n, text, vector)
                 for n, (text, vector) in enumerate(zip(texts, vectors, strict=True))],
            )  # fmt: skip
            _touch(conn, job.vector_store_id)
            return True

        return await self._write_in_thread(op)

    async def fail_ingest(self, job: IngestJob, error: dict[str, str]) -> None:
        await self._write(
            lambda conn: conn.execute(
                "UPDATE vector_store_files SET status = 'failed', lease_until = NULL, "
                "last_error = ? WHERE vector_store_id = ? AND file_id = ? "
                "AND status = 'in_progress' AND attempts = ?",
                (orjson.dumps(error), job.vector_store_id, job.file_id, job.attempts),
            )
        )

    # -- search -----------------------------------------------------------------------
    async def searchable_files(
        self, owner: str, vector_store_id: str
    ) -> dict[str, tuple[str, dict[str, Any]]]:
        def op(conn: Conn) -> dict[str, tuple[str, dict[str, Any]]]:
            _store(conn, owner, vector_store_id)
            rows = conn.execute(
                "SELECT v.file_id, f.filename, v.attributes FROM vector_store_files v "
                "JOIN files f ON f.id = v.file_id "
                "WHERE v.vector_store_id = ? AND v.status = 'completed' "
                f"AND (f.expires_at IS NULL OR f.expires_at > {NOW})",
                (vector_store_id,),
            ).fetchall()
            return {r[0]: (r[1], orjson.loads(r[2])) for r in rows}

        return await self._read(op)

    async def keyword_search(
        self, vector_store_id: str, terms: list[str], file_ids: list[str], limit: int
    ) -> list[tuple[int, float]]:
        if not terms or not file_ids:
            return []
        # Each word quoted: FTS5 query syntax in a user's words is never interpreted.
        match = fts5_query(" ".join(terms))
        if not match:
            return []

        def op(conn: Conn) -> list[tuple[int, float]]:
            # The full-text match first (MATERIALIZED), then the store and files: left
            # to itself the planner may walk the store's chunks and try MATCH on each
            # (bench/vector_store_search.py: search p50 at 100k chunks 171 -> 133 ms).
            rows = conn.execute(
                "WITH m AS MATERIALIZED (SELECT rowid AS id, bm25(chunks_fts) AS rank "
                "FROM chunks_fts WHERE chunks_fts MATCH ?) "
                "SELECT m.id, -m.rank FROM m JOIN chunks c ON c.id = m.id "
                "WHERE c.vector_store_id = ? "
                f"AND c.file_id IN ({', '.join('?' * len(file_ids))}) "
                "ORDER BY m.rank LIMIT ?",
                (match, vector_store_id, *file_ids, limit),
            ).fetchall()
            return [(r[0], float(r[1])) for r in rows]

        return await self._read_in_thread(op)

    async def store_generation(self, vector_store_id: str) -> int:
        def op(conn: Conn) -> int:
            row = conn.execute(
                "SELECT generation FROM vector_stores WHERE id = ?", (vector_store_id,)
            ).fetchone()
            return -1 if row is None else int(row[0])

        return await self._read(op)

    async def store_vectors(self, vector_store_id: str) -> StoreVectors:
        def op(conn: Conn) -> StoreVectors:
            # The worker runs this in a read transaction: one snapshot, so the
            # generation matches the rows.
            row = conn.execute(
                "SELECT generation FROM vector_stores WHERE id = ?", (vector_store_id,)
            ).fetchone()
            rows = conn.execute(
                "SELECT id, file_id, vector FROM chunks WHERE vector_store_id = ? ORDER BY id",
                (vector_store_id,),
            ).fetchall()
            return StoreVectors(
                -1 if row is None else int(row[0]), [r[0] for r in rows], [r[1] for r in rows],
                b"".join(r[2] for r in rows),
            )  # fmt: skip

        return await self._read_in_thread(op)

    async def chunks(self, chunk_ids: list[int]) -> dict[int, Chunk]:
        if not chunk_ids:
            return {}

        def op(conn: Conn) -> dict[int, Chunk]:
            rows = conn.execute(
                "SELECT id, file_id, text FROM chunks "
                f"WHERE id IN ({', '.join('?' * len(chunk_ids))})",
                chunk_ids,
            ).fetchall()
            return {r[0]: Chunk(*r) for r in rows}

        return await self._read(op)


def _now(conn: Conn) -> int:
    return int(conn.execute("SELECT unixepoch()").fetchone()[0])
