"""Files, vector stores, chunks and the ingestion queue on PostgreSQL: the
PostgresStore's methods for them (files_base.FileStore). Calls that write several rows
run in one transaction; the queue is taken with FOR UPDATE SKIP LOCKED, so replicas
never take the same file at once."""

from __future__ import annotations

from typing import Any

import orjson

from convostack.storage import postgres_pages as pages
from convostack.storage.base import CursorMissing, Order
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

_COUNTS = (
    "SELECT status, count(*), sum(usage_bytes) FROM vector_store_files "
    "WHERE vector_store_id = $1 GROUP BY status"
)


async def _store(conn: Any, owner: str, vector_store_id: str) -> VectorStoreRow:
    row = await conn.fetchrow(
        f"SELECT {STORE_COLUMNS} FROM vector_stores WHERE id = $1 AND owner = $2",
        vector_store_id, owner,
    )  # fmt: skip
    if row is None:
        raise VectorStoreMissing(vector_store_id)
    return store_row(row, await conn.fetch(_COUNTS, vector_store_id))


async def _store_file(conn: Any, owner: str, vector_store_id: str, file_id: str) -> StoreFileRow:
    await _store(conn, owner, vector_store_id)
    row = await conn.fetchrow(
        f"SELECT {STORE_FILE_COLUMNS} FROM vector_store_files "
        "WHERE vector_store_id = $1 AND file_id = $2",
        vector_store_id, file_id,
    )  # fmt: skip
    if row is None:
        raise StoreFileMissing(file_id)
    return store_file_row(row)


async def _remove_file(conn: Any, vector_store_id: str, file_id: str) -> None:
    for table in ("chunks", "vector_store_files"):
        await conn.execute(
            f"DELETE FROM {table} WHERE vector_store_id = $1 AND file_id = $2",
            vector_store_id, file_id,
        )  # fmt: skip
    await conn.execute(
        "UPDATE vector_stores SET generation = generation + 1 WHERE id = $1", vector_store_id
    )


# A file past its `expires_at` is gone for every read at once, by the database's clock;
# the sweep (files/expiry.py) deletes it later.
NOW = "extract(epoch FROM now())::bigint"
LIVE = f"(expires_at IS NULL OR expires_at > {NOW})"


async def _remove_from_stores(conn: Any, owner: str, file_id: str) -> None:
    stores = await conn.fetch(
        "SELECT vector_store_id FROM vector_store_files WHERE file_id = $1 AND owner = $2",
        file_id, owner,
    )  # fmt: skip
    for row in stores:
        await _remove_file(conn, row[0], file_id)


async def _add_files(
    conn: Any,
    owner: str,
    vector_store_id: str,
    files: list[NewStoreFile],
    batch_id: str | None,
    now: int,
) -> None:
    for new in files:
        if (
            await conn.fetchrow(
                f"SELECT 1 FROM files WHERE id = $1 AND owner = $2 AND {LIVE}", new.file_id, owner
            )
            is None
        ):
            raise FileMissing(new.file_id)
        await conn.execute(
            "INSERT INTO vector_store_files (vector_store_id, file_id, owner, created_at, "
            "status, attributes, chunking, batch_id) "
            "VALUES ($1, $2, $3, $4, 'in_progress', $5, $6, $7) "
            "ON CONFLICT (vector_store_id, file_id) DO UPDATE SET "
            "batch_id = coalesce(excluded.batch_id, vector_store_files.batch_id)",
            vector_store_id, new.file_id, owner, now, orjson.dumps(new.attributes),
            orjson.dumps(new.chunking), batch_id,
        )  # fmt: skip


async def _batch(conn: Any, owner: str, vector_store_id: str, batch_id: str) -> BatchRow:
    await _store(conn, owner, vector_store_id)
    row = await conn.fetchrow(
        "SELECT id, vector_store_id, created_at, cancelled FROM file_batches "
        "WHERE id = $1 AND vector_store_id = $2",
        batch_id, vector_store_id,
    )  # fmt: skip
    if row is None:
        raise BatchMissing(batch_id)
    counts = await conn.fetch(
        "SELECT status, count(*), 0 FROM vector_store_files WHERE batch_id = $1 GROUP BY status",
        batch_id,
    )
    return BatchRow(row[0], row[1], row[2], bool(row[3]), tally(counts)[0])


class PostgresFiles:
    """Mixed into PostgresStore, whose `_connection()` this uses."""

    def _connection(self) -> Any:
        raise NotImplementedError

    async def _run(self, operation: Any, *, transaction: bool = False) -> Any:
        """`operation(conn)` on a pooled connection, in a transaction if asked."""
        async with self._connection() as conn:
            if not transaction:
                return await operation(conn)
            async with conn.transaction():
                return await operation(conn)

    # -- files ------------------------------------------------------------------------
    async def create_file(
        self, owner: str, file: FileRow, data: bytes, *, max_total: int | None = None
    ) -> None:
        async def op(conn: Any) -> None:
            if max_total is not None:
                # One owner's uploads queue on this lock, so the sum cannot go stale.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", owner)
                held = await conn.fetchval(
                    "SELECT coalesce(sum(bytes), 0) FROM files WHERE owner = $1", owner
                )
                if held + file.bytes > max_total:
                    raise FilesFull(int(held))
            await conn.execute(
                "INSERT INTO files (id, owner, created_at, filename, purpose, bytes, "
                "expires_at, content_type, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                file.id, owner, file.created_at, file.filename, file.purpose, file.bytes,
                file.expires_at, file.content_type, data,
            )  # fmt: skip

        await self._run(op, transaction=max_total is not None)

    async def list_files(
        self, owner: str, *, after: str | None, limit: int, order: Order, purpose: str | None
    ) -> tuple[list[FileRow], bool]:
        live = f"(r.expires_at IS NULL OR r.expires_at > {NOW})"
        statement = pages.list_sql(
            "files", FILE_COLUMNS, f"($3::text IS NULL OR r.purpose = $3) AND {live}", order
        )

        async def op(conn: Any) -> tuple[list[FileRow], bool]:
            rows = await conn.fetch(statement, owner, after, purpose, limit + 1)
            if not rows[0]["cursor_found"]:
                raise CursorMissing(after or "")
            found = [file_row(tuple(r)[1:]) for r in rows if r["id"] is not None]
            return found[:limit], len(found) > limit

        return await self._run(op)  # type: ignore[no-any-return]

    async def get_file(self, owner: str, file_id: str) -> FileRow:
        async def op(conn: Any) -> FileRow:
            row = await conn.fetchrow(
                f"SELECT {FILE_COLUMNS} FROM files WHERE id = $1 AND owner = $2 AND {LIVE}",
                file_id, owner,
            )  # fmt: skip
            if row is None:
                raise FileMissing(file_id)
            return file_row(row)

        return await self._run(op)  # type: ignore[no-any-return]

    async def file_data(self, owner: str, file_id: str) -> FileData:
        async def op(conn: Any) -> FileData:
            row = await conn.fetchrow(
                f"SELECT filename, content_type, data FROM files WHERE id = $1 AND owner = $2 "
                f"AND {LIVE}",
                file_id, owner,
            )  # fmt: skip
            if row is None:
                raise FileMissing(file_id)
            return FileData(row[0], row[1], bytes(row[2]))

        return await self._run(op)  # type: ignore[no-any-return]

    async def delete_file(self, owner: str, file_id: str) -> None:
        async def op(conn: Any) -> None:
            deleted = await conn.fetchrow(
                f"DELETE FROM files WHERE id = $1 AND owner = $2 AND {LIVE} RETURNING 1",
                file_id, owner,
            )  # fmt: skip
            if deleted is None:
                raise FileMissing(file_id)
            await _remove_from_stores(conn, owner, file_id)

        await self._run(op, transaction=True)

    async def delete_expired_files(self, now: int, limit: int) -> int:
        async def op(conn: Any) -> int:
            gone = await conn.fetch(
                "DELETE FROM files WHERE id IN (SELECT id FROM files WHERE expires_at <= $1 "
                "LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING owner, id",
                now, limit,
            )  # fmt: skip
            for owner, file_id in gone:
                await _remove_from_stores(conn, owner, file_id)
            return len(gone)

        return await self._run(op, transaction=True)  # type: ignore[no-any-return]

    # -- vector stores ----------------------------------------------------------------
    async def create_vector_store(
        self, owner: str, store: VectorStoreRow, files: list[NewStoreFile], batch_id: str | None
    ) -> None:
        async def op(conn: Any) -> None:
            await conn.execute(
                "INSERT INTO vector_stores (id, owner, created_at, name, metadata, "
                "expires_after, last_active_at, embedding_model, dimension) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                store.id, owner, store.created_at, store.name, orjson.dumps(store.metadata),
                None if store.expires_after is None else orjson.dumps(store.expires_after),
                store.last_active_at, store.embedding_model, store.dimension,
            )  # fmt: skip
            await _add_files(conn, owner, store.id, files, batch_id, store.created_at)

        await self._run(op, transaction=True)

    async def list_vector_stores(
        self, owner: str, *, after: str | None, limit: int, order: Order
    ) -> tuple[list[VectorStoreRow], bool]:
        statement = pages.list_sql("vector_stores", STORE_COLUMNS, "$3::text IS NULL", order)

        async def op(conn: Any) -> tuple[list[VectorStoreRow], bool]:
            rows = await conn.fetch(statement, owner, after, None, limit + 1)
            if not rows[0]["cursor_found"]:
                raise CursorMissing(after or "")
            found = [tuple(r)[1:] for r in rows if r["id"] is not None]
            out = [store_row(r, await conn.fetch(_COUNTS, r[0])) for r in found[:limit]]
            return out, len(found) > limit

        return await self._run(op)  # type: ignore[no-any-return]

    async def get_vector_store(self, owner: str, vector_store_id: str) -> VectorStoreRow:
        return await self._run(lambda conn: _store(conn, owner, vector_store_id))  # type: ignore[no-any-return]

    async def update_vector_store(
        self, owner: str, vector_store_id: str, changes: dict[str, Any]
    ) -> VectorStoreRow:
        async def op(conn: Any) -> VectorStoreRow:
            await _store(conn, owner, vector_store_id)
            if changes:
                assignments = ", ".join(f"{c} = ${n}" for n, c in enumerate(changes, start=2))
                await conn.execute(
                    f"UPDATE vector_stores SET {assignments} WHERE id = $1",
                    vector_store_id, *changes.values(),
                )  # fmt: skip
            return await _store(conn, owner, vector_store_id)

        return await self._run(op, transaction=True)  # type: ignore[no-any-return]

    async def delete_vector_store(self, owner: str, vector_store_id: str) -> None:
        async def op(conn: Any) -> None:
            deleted = await conn.fetchrow(
                "DELETE FROM vector_stores WHERE id = $1 AND owner = $2 RETURNING 1",
                vector_store_id, owner,
            )  # fmt: skip
            if deleted is None:
                raise VectorStoreMissing(vector_store_id)
            for table in ("chunks", "vector_store_files", "file_batches"):
                await conn.execute(
                    f"DELETE FROM {table} WHERE vector_store_id = $1", vector_store_id
                )

        await self._run(op, transaction=True)

    # -- files in stores --------------------------------------------------------------
    async def add_store_files(
        self, owner: str, vector_store_id: str, files: list[NewStoreFile], batch_id: str | None
    ) -> None:
        async def op(conn: Any) -> None:
            await _store(conn, owner, vector_store_id)
            now = int(await conn.fetchval("SELECT extract(epoch FROM now())::bigint"))
            if batch_id is not None:
                await conn.execute(
                    "INSERT INTO file_batches (id, owner, vector_store_id, created_at) "
                    "VALUES ($1, $2, $3, $4)",
                    batch_id, owner, vector_store_id, now,
                )  # fmt: skip
            await _add_files(conn, owner, vector_store_id, files, batch_id, now)

        await self._run(op, transaction=True)

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
        async def op(conn: Any) -> tuple[list[StoreFileRow], bool]:
            if batch_id is not None:
                await _batch(conn, owner, vector_store_id, batch_id)
            else:
                await _store(conn, owner, vector_store_id)
            bound = -1 if order == "asc" else 2**63 - 1
            if after is not None:
                found = await conn.fetchval(
                    "SELECT pos FROM vector_store_files "
                    "WHERE vector_store_id = $1 AND file_id = $2",
                    vector_store_id, after,
                )  # fmt: skip
                if found is None:
                    raise CursorMissing(after)
                bound = found
            comparison, direction = (">", "ASC") if order == "asc" else ("<", "DESC")
            rows = await conn.fetch(
                f"SELECT {STORE_FILE_COLUMNS} FROM vector_store_files WHERE vector_store_id = $1 "
                f"AND pos {comparison} $2 AND ($3::text IS NULL OR status = $3) "
                f"AND ($4::text IS NULL OR batch_id = $4) ORDER BY pos {direction} LIMIT $5",
                vector_store_id, bound, status, batch_id, limit + 1,
            )  # fmt: skip
            return [store_file_row(r) for r in rows[:limit]], len(rows) > limit

        return await self._run(op)  # type: ignore[no-any-return]

    async def get_store_file(self, owner: str, vector_store_id: str, file_id: str) -> StoreFileRow:
        return await self._run(  # type: ignore[no-any-return]
            lambda conn: _store_file(conn, owner, vector_store_id, file_id)
        )

    async def update_store_file(
        self, owner: str, vector_store_id: str, file_id: str, attributes: dict[str, Any]
    ) -> StoreFileRow:
        async def op(conn: Any) -> StoreFileRow:
            await _store_file(conn, owner, vector_store_id, file_id)
            await conn.execute(
                "UPDATE vector_store_files SET attributes = $1 "
                "WHERE vector_store_id = $2 AND file_id = $3",
                orjson.dumps(attributes), vector_store_id, file_id,
            )  # fmt: skip
            return await _store_file(conn, owner, vector_store_id, file_id)

        return await self._run(op, transaction=True)  # type: ignore[no-any-return]

    async def delete_store_file(self, owner: str, vector_store_id: str, file_id: str) -> None:
        async def op(conn: Any) -> None:
            await _store_file(conn, owner, vector_store_id, file_id)
            await _remove_file(conn, vector_store_id, file_id)

        await self._run(op, transaction=True)

    async def store_file_chunks(self, owner: str, vector_store_id: str, file_id: str) -> list[str]:
        async def op(conn: Any) -> list[str]:
            await _store_file(conn, owner, vector_store_id, file_id)
            rows = await conn.fetch(
                "SELECT text FROM chunks WHERE vector_store_id = $1 AND file_id = $2 "
                "ORDER BY seq",
                vector_store_id, file_id,
            )  # fmt: skip
            return [r[0] for r in rows]

        return await self._run(op)  # type: ignore[no-any-return]

    async def get_batch(self, owner: str, vector_store_id: str, batch_id: str) -> BatchRow:
        return await self._run(lambda conn: _batch(conn, owner, vector_store_id, batch_id))  # type: ignore[no-any-return]

    async def cancel_batch(self, owner: str, vector_store_id: str, batch_id: str) -> BatchRow:
        async def op(conn: Any) -> BatchRow:
            await _batch(conn, owner, vector_store_id, batch_id)
            await conn.execute("UPDATE file_batches SET cancelled = true WHERE id = $1", batch_id)
            await conn.execute(
                "UPDATE vector_store_files SET status = 'cancelled', lease_until = NULL "
                "WHERE batch_id = $1 AND status = 'in_progress'",
                batch_id,
            )
            return await _batch(conn, owner, vector_store_id, batch_id)

        return await self._run(op, transaction=True)  # type: ignore[no-any-return]

    # -- ingestion --------------------------------------------------------------------
    async def claim_ingest(
        self, now: int, lease_seconds: int, embedder: tuple[str, int]
    ) -> IngestJob | None:
        async def op(conn: Any) -> IngestJob | None:
            row = await conn.fetchrow(
                "UPDATE vector_store_files SET lease_until = $1, attempts = attempts + 1 "
                "WHERE pos = (SELECT f.pos FROM vector_store_files f "
                "JOIN vector_stores s ON s.id = f.vector_store_id "
                "WHERE f.status = 'in_progress' AND (f.lease_until IS NULL OR f.lease_until < $2) "
                "AND ((s.embedding_model = $3 AND s.dimension = $4) OR f.created_at < $5) "
                "ORDER BY f.pos LIMIT 1 FOR UPDATE OF f SKIP LOCKED) "
                "RETURNING owner, vector_store_id, file_id, attempts, chunking",
                now + lease_seconds, now, *embedder, now - lease_seconds,
            )  # fmt: skip
            if row is None:
                return None
            store = await conn.fetchrow(
                "SELECT embedding_model, dimension FROM vector_stores WHERE id = $1", row[1]
            )
            return IngestJob(row[0], row[1], row[2], row[3], orjson.loads(row[4]),
                             store[0], store[1])  # fmt: skip

        return await self._run(op)  # type: ignore[no-any-return]

    async def renew_ingest(self, job: IngestJob, until: int) -> bool:
        async def op(conn: Any) -> bool:
            row = await conn.fetchrow(
                "UPDATE vector_store_files SET lease_until = $1 WHERE vector_store_id = $2 "
                "AND file_id = $3 AND status = 'in_progress' AND attempts = $4 RETURNING 1",
                until, job.vector_store_id, job.file_id, job.attempts,
            )  # fmt: skip
            return row is not None

        return await self._run(op)  # type: ignore[no-any-return]

    async def finish_ingest(
        self, job: IngestJob, texts: list[str], vectors: list[bytes], usage_bytes: int
    ) -> bool:
        async def op(conn: Any) -> bool:
            held = await conn.fetchrow(
                "UPDATE vector_store_files SET status = 'completed', lease_until = NULL, "
                "usage_bytes = $1, last_error = NULL WHERE vector_store_id = $2 "
                "AND file_id = $3 AND status = 'in_progress' AND attempts = $4 RETURNING 1",
                usage_bytes, job.vector_store_id, job.file_id, job.attempts,
            )  # fmt: skip
            if held is None:
                return False
            await conn.executemany(
                "INSERT INTO chunks (vector_store_id, file_id, seq, text, vector) "
                "VALUES ($1, $2, $3, $4, $5)",
                [(job.vector_store_id, job.file_id, n, text, vector)
                 for n, (text, vector) in enumerate(zip(texts, vectors, strict=True))],
            )  # fmt: skip
            await conn.execute(
                "UPDATE vector_stores SET generation = generation + 1 WHERE id = $1",
                job.vector_store_id,
            )
            return True

        return await self._run(op, transaction=True)  # type: ignore[no-any-return]

    async def fail_ingest(self, job: IngestJob, error: dict[str, str]) -> None:
        async def op(conn: Any) -> None:
            await conn.execute(
                "UPDATE vector_store_files SET status = 'failed', lease_until = NULL, "
                "last_error = $1 WHERE vector_store_id = $2 AND file_id = $3 "
                "AND status = 'in_progress' AND attempts = $4",
                orjson.dumps(error), job.vector_store_id, job.file_id, job.attempts,
            )  # fmt: skip

        await self._run(op)

    # -- search -----------------------------------------------------------------------
    async def searchable_files(
        self, owner: str, vector_store_id: str
    ) -> dict[str, tuple[str, dict[str, Any]]]:
        async def op(conn: Any) -> dict[str, tuple[str, dict[str, Any]]]:
            await _store(conn, owner, vector_store_id)
            rows = await conn.fetch(
                "SELECT v.file_id, f.filename, v.attributes FROM vector_store_files v "
                "JOIN files f ON f.id = v.file_id "
                "WHERE v.vector_store_id = $1 AND v.status = 'completed' "
                f"AND (f.expires_at IS NULL OR f.expires_at > {NOW})",
                vector_store_id,
            )
            return {r[0]: (r[1], orjson.loads(r[2])) for r in rows}

        return await self._run(op)  # type: ignore[no-any-return]

    async def keyword_search(
        self, vector_store_id: str, terms: list[str], file_ids: list[str], limit: int
    ) -> list[tuple[int, float]]:
        if not terms or not file_ids:
            return []

        async def op(conn: Any) -> list[tuple[int, float]]:
            # Each term through plainto_tsquery (never parsed as query syntax), OR-ed.
            rows = await conn.fetch(
                "WITH q AS (SELECT (SELECT string_agg(t::text, ' | ') FROM unnest($3::text[]) "
                "w, plainto_tsquery('english', w) t WHERE t::text <> '')::tsquery AS query) "
                "SELECT c.id, ts_rank_cd(c.tsv, q.query) AS score FROM chunks c, q "
                "WHERE q.query IS NOT NULL AND c.vector_store_id = $1 "
                "AND c.file_id = ANY($2::text[]) AND c.tsv @@ q.query "
                "ORDER BY score DESC LIMIT $4",
                vector_store_id, file_ids, terms, limit,
            )  # fmt: skip
            return [(r[0], float(r[1])) for r in rows]

        return await self._run(op)  # type: ignore[no-any-return]

    async def store_generation(self, vector_store_id: str) -> int:
        async def op(conn: Any) -> int:
            found = await conn.fetchval(
                "SELECT generation FROM vector_stores WHERE id = $1", vector_store_id
            )
            return -1 if found is None else int(found)

        return await self._run(op)  # type: ignore[no-any-return]

    async def store_vectors(self, vector_store_id: str) -> StoreVectors:
        async def op(conn: Any) -> StoreVectors:
            generation = await conn.fetchval(
                "SELECT generation FROM vector_stores WHERE id = $1", vector_store_id
            )
            rows = await conn.fetch(
                "SELECT id, file_id, vector FROM chunks WHERE vector_store_id = $1 ORDER BY id",
                vector_store_id,
            )
            return StoreVectors(
                -1 if generation is None else int(generation), [r[0] for r in rows],
                [r[1] for r in rows], b"".join(bytes(r[2]) for r in rows),
            )  # fmt: skip

        # REPEATABLE READ: one snapshot, so the generation matches the rows.
        async with self._connection() as conn, conn.transaction(isolation="repeatable_read"):
            return await op(conn)

    async def chunks(self, chunk_ids: list[int]) -> dict[int, Chunk]:
        if not chunk_ids:
            return {}

        async def op(conn: Any) -> dict[int, Chunk]:
            rows = await conn.fetch(
                "SELECT id, file_id, text FROM chunks WHERE id = ANY($1::bigint[])", chunk_ids
            )
            return {r[0]: Chunk(r[0], r[1], r[2]) for r in rows}

        return await self._run(op)  # type: ignore[no-any-return]
