"""The store's part for files, vector stores, their chunks and the ingestion queue.

Both backends select the same columns in the same order, so the rows are turned into
these dataclasses by the functions here, once. Every call names the owner; a row of
another owner is a missing one. Vectors travel as float32 little-endian bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from convostack.storage.common import Order, StoreError

STATUSES = ("in_progress", "completed", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class FileRow:
    id: str
    created_at: int
    filename: str
    purpose: str
    bytes: int
    expires_at: int | None
    content_type: str | None


FILE_COLUMNS = "id, created_at, filename, purpose, bytes, expires_at, content_type"


def file_row(row: Any) -> FileRow:
    return FileRow(*tuple(row))


@dataclass(frozen=True, slots=True)
class VectorStoreRow:
    id: str
    created_at: int
    name: str
    metadata: dict[str, str]
    expires_after: dict[str, Any] | None
    last_active_at: int
    embedding_model: str
    dimension: int
    counts: dict[str, int] = field(default_factory=dict)
    usage_bytes: int = 0


STORE_COLUMNS = (
    "id, created_at, name, metadata, expires_after, last_active_at, embedding_model, dimension"
)


def store_row(row: Any, counts: list[Any]) -> VectorStoreRow:
    """A store's row, with `counts` its files' (status, count, usage bytes) rows."""
    expires = row[4]
    return VectorStoreRow(
        row[0], row[1], row[2], orjson.loads(row[3]),
        orjson.loads(expires) if expires is not None else None,
        row[5], row[6], row[7], *tally(counts),
    )  # fmt: skip


def tally(counts: list[Any]) -> tuple[dict[str, int], int]:
    by_status = dict.fromkeys(STATUSES, 0)
    used = 0
    for status, count, usage in counts:
        by_status[status] = int(count)
        used += int(usage or 0)
    return by_status, used


@dataclass(frozen=True, slots=True)
class StoreFileRow:
    vector_store_id: str
    file_id: str
    created_at: int
    status: str
    last_error: dict[str, str] | None
    attributes: dict[str, Any]
    chunking: dict[str, Any]
    usage_bytes: int


STORE_FILE_COLUMNS = (
    "vector_store_id, file_id, created_at, status, last_error, attributes, chunking, usage_bytes"
)


def store_file_row(row: Any) -> StoreFileRow:
    error = row[4]
    return StoreFileRow(
        row[0], row[1], row[2], row[3], orjson.loads(error) if error is not None else None,
        orjson.loads(row[5]), orjson.loads(row[6]), row[7],
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class NewStoreFile:
    file_id: str
    attributes: dict[str, Any]
    chunking: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BatchRow:
    id: str
    vector_store_id: str
    created_at: int
    cancelled: bool
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class IngestJob:
    """A file taken from the queue: `attempts` counts this one."""

    owner: str
    vector_store_id: str
    file_id: str
    attempts: int
    chunking: dict[str, Any]
    embedding_model: str
    dimension: int


@dataclass(frozen=True, slots=True)
class FileData:
    filename: str
    content_type: str | None
    data: bytes


@dataclass(frozen=True, slots=True)
class StoreVectors:
    """A store's completed chunks: their ids, files and vectors (rows of `vectors`)."""

    generation: int
    chunk_ids: list[int]
    file_ids: list[str]
    vectors: bytes


@dataclass(frozen=True, slots=True)
class Chunk:
    id: int
    file_id: str
    text: str


class FileMissing(StoreError):
    def __init__(self, file_id: str):
        super().__init__(file_id)
        self.file_id = file_id


class VectorStoreMissing(StoreError):
    def __init__(self, vector_store_id: str):
        super().__init__(vector_store_id)
        self.vector_store_id = vector_store_id


class StoreFileMissing(StoreError):
    """The file is not in the vector store (or the batch)."""

    def __init__(self, file_id: str):
        super().__init__(file_id)
        self.file_id = file_id


class FilesFull(StoreError):
    """The owner's files hold `held` bytes; adding the file would pass the quota."""

    def __init__(self, held: int):
        super().__init__(held)
        self.held = held


class BatchMissing(StoreError):
    def __init__(self, batch_id: str):
        super().__init__(batch_id)
        self.batch_id = batch_id


class FileStore(Protocol):
    # -- files ------------------------------------------------------------------------
    async def create_file(
        self, owner: str, file: FileRow, data: bytes, *, max_total: int | None = None
    ) -> None:
        """Raises FilesFull, storing nothing, when the owner's files would then hold more
        than `max_total` bytes (checked under the write's lock: exact when concurrent)."""
        ...

    async def list_files(
        self, owner: str, *, after: str | None, limit: int, order: Order, purpose: str | None
    ) -> tuple[list[FileRow], bool]:
        """Raises CursorMissing."""
        ...

    async def get_file(self, owner: str, file_id: str) -> FileRow:
        """Raises FileMissing."""
        ...

    async def file_data(self, owner: str, file_id: str) -> FileData:
        """Raises FileMissing."""
        ...

    async def delete_file(self, owner: str, file_id: str) -> None:
        """Deletes the file, and takes it (and its chunks) out of every vector store at
        once. Raises FileMissing."""
        ...

    # -- vector stores ----------------------------------------------------------------
    async def create_vector_store(
        self, owner: str, store: VectorStoreRow, files: list[NewStoreFile], batch_id: str | None
    ) -> None:
        """Raises FileMissing (nothing created) for a file not the owner's."""
        ...

    async def list_vector_stores(
        self, owner: str, *, after: str | None, limit: int, order: Order
    ) -> tuple[list[VectorStoreRow], bool]: ...

    async def get_vector_store(self, owner: str, vector_store_id: str) -> VectorStoreRow:
        """Raises VectorStoreMissing."""
        ...

    async def update_vector_store(
        self, owner: str, vector_store_id: str, changes: dict[str, Any]
    ) -> VectorStoreRow:
        """`changes` holds columns among name, metadata, expires_after, last_active_at
        (JSON ones already as bytes). Raises VectorStoreMissing."""
        ...

    async def delete_vector_store(self, owner: str, vector_store_id: str) -> None: ...

    # -- files in stores --------------------------------------------------------------
    async def add_store_files(
        self, owner: str, vector_store_id: str, files: list[NewStoreFile], batch_id: str | None
    ) -> None:
        """Queues each file for ingestion (one already in the store is left as it is, but
        joins the batch). Raises VectorStoreMissing or FileMissing; nothing is added."""
        ...

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
        """Raises VectorStoreMissing, BatchMissing or CursorMissing."""
        ...

    async def get_store_file(self, owner: str, vector_store_id: str, file_id: str) -> StoreFileRow:
        """Raises VectorStoreMissing or StoreFileMissing."""
        ...

    async def update_store_file(
        self, owner: str, vector_store_id: str, file_id: str, attributes: dict[str, Any]
    ) -> StoreFileRow: ...

    async def delete_store_file(self, owner: str, vector_store_id: str, file_id: str) -> None: ...

    async def store_file_chunks(self, owner: str, vector_store_id: str, file_id: str) -> list[str]:
        """The file's chunks' text, in order. Raises as get_store_file."""
        ...

    async def get_batch(self, owner: str, vector_store_id: str, batch_id: str) -> BatchRow:
        """Raises VectorStoreMissing or BatchMissing."""
        ...

    async def cancel_batch(self, owner: str, vector_store_id: str, batch_id: str) -> BatchRow:
        """Its files not yet ingested become `cancelled`."""
        ...

    async def delete_expired_files(self, now: int, limit: int) -> int:
        """Delete up to `limit` files whose `expires_at` is past (with their chunks and
        places in vector stores); how many. Reads stopped showing them when they expired."""
        ...

    # -- ingestion, by any process ----------------------------------------------------
    async def claim_ingest(
        self, now: int, lease_seconds: int, embedder: tuple[str, int]
    ) -> IngestJob | None:
        """Takes the oldest queued file whose lease is free or ran out, of a store built
        with `embedder` (model, dimension): replicas with another embedder (a rolling
        upgrade, a test's own stack) leave it to one that can embed it. A file no such
        process took within a lease is taken anyway, to fail with a clear error rather
        than wait for ever."""
        ...

    async def renew_ingest(self, job: IngestJob, until: int) -> bool:
        """False when the job is no longer this claim's (deleted, cancelled, retaken)."""
        ...

    async def finish_ingest(
        self, job: IngestJob, texts: list[str], vectors: list[bytes], usage_bytes: int
    ) -> bool:
        """Stores the chunks and marks the file completed, if the claim still holds."""
        ...

    async def fail_ingest(self, job: IngestJob, error: dict[str, str]) -> None: ...

    # -- search -----------------------------------------------------------------------
    async def searchable_files(
        self, owner: str, vector_store_id: str
    ) -> dict[str, tuple[str, dict[str, Any]]]:
        """The store's completed files: file id -> (filename, attributes)."""
        ...

    async def keyword_search(
        self, vector_store_id: str, terms: list[str], file_ids: list[str], limit: int
    ) -> list[tuple[int, float]]:
        """Chunk ids best first by full-text rank (any of `terms`), with their score,
        among the chunks of `file_ids`."""
        ...

    async def store_generation(self, vector_store_id: str) -> int: ...

    async def store_vectors(self, vector_store_id: str) -> StoreVectors: ...

    async def chunks(self, chunk_ids: list[int]) -> dict[int, Chunk]: ...
