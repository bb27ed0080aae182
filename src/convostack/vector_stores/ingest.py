"""Ingestion, off the request path: extract a file's text, chunk it, embed the chunks and
store them with their vectors (the keyword index follows the rows).

The queue is the database: a `vector_store_files` row `in_progress` is a file to ingest.
Each serving process runs one worker (queue_worker.py's loop, shared with background
responses) that takes the oldest free row of a store built with its own embedder by
setting a lease (FOR UPDATE SKIP LOCKED on PostgreSQL, so replicas never take the same
file; a process with another embedder, as in a rolling upgrade, does not take it and fail
it), renews the lease while it embeds, and writes the chunks and `completed` in one
transaction that holds only if its claim still does (the file was not deleted, cancelled
or retaken). A process that dies leaves a lease that runs out; another takes the file
again. A file whose ingestion was interrupted MAX_ATTEMPTS times fails with a server_error
instead of looping for ever. One file at a time per process: embedding already uses the
cores.
"""

from __future__ import annotations

import asyncio
import logging
import time

from convostack.queue_worker import QueueWorker
from convostack.storage.base import Store, StoreUnavailable
from convostack.storage.files_base import FileMissing, IngestJob
from convostack.vector_stores.embedding import EmbedderSource

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
EMBED_BATCH = 32


class IngestFailure(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.error = {"code": code, "message": message}


class Ingestor:
    def __init__(
        self, store: Store, embedders: EmbedderSource, *, poll_seconds: float, lease_seconds: int
    ):
        self._store = store
        self._embedders = embedders
        self._lease = lease_seconds
        self._queue = QueueWorker(
            "convostack-ingest",
            lambda: store.claim_ingest(int(time.time()), lease_seconds, embedders.model()),
            self.ingest,
            lambda job: f"{job.vector_store_id}/{job.file_id}",
            poll_seconds=poll_seconds,
        )

    def start(self) -> None:
        self._queue.start()

    def wake(self) -> None:
        self._queue.wake()

    async def close(self) -> None:
        await self._queue.close()

    async def ingest(self, job: IngestJob) -> None:
        try:
            texts, vectors, usage = await self._prepare(job)
            if texts is not None and not await self._store.finish_ingest(
                job, texts, vectors, usage
            ):
                log.info("file %s left %s while it was ingested", job.file_id, job.vector_store_id)
        except IngestFailure as failure:
            await self._store.fail_ingest(job, failure.error)
        except StoreUnavailable as exc:
            log.warning("ingestion of %s interrupted, retried later: %s", job.file_id, exc)
        except Exception:
            log.exception("ingestion of %s into %s failed", job.file_id, job.vector_store_id)
            await self._store.fail_ingest(
                job, {"code": "server_error", "message": "The server failed to ingest the file."}
            )

    async def _prepare(self, job: IngestJob) -> tuple[list[str] | None, list[bytes], int]:
        from convostack.retrieval.extract import ExtractionError, extract_text
        from convostack.retrieval.ranking import chunk_text

        if job.attempts > MAX_ATTEMPTS:
            raise IngestFailure(
                "server_error",
                f"Ingestion of this file was interrupted {MAX_ATTEMPTS} times; add it again.",
            )
        embedder = self._embedders.get()
        if (embedder.model, embedder.dimension) != (job.embedding_model, job.dimension):
            raise IngestFailure(
                "server_error",
                f"This vector store holds {job.embedding_model} embeddings ({job.dimension} "
                f"dimensions); this server embeds with {embedder.model} "
                f"({embedder.dimension}). Create a new vector store.",
            )
        try:
            found = await self._store.file_data(job.owner, job.file_id)
        except FileMissing:
            raise IngestFailure("invalid_file", "The file was deleted.") from None
        if not found.data:
            raise IngestFailure("invalid_file", "The file is empty.")
        try:
            text = await asyncio.to_thread(
                extract_text, found.data, found.filename, found.content_type
            )
        except ExtractionError as exc:
            raise IngestFailure("unsupported_file", str(exc)) from None
        static = job.chunking["static"]
        chunks = await asyncio.to_thread(
            chunk_text, text, static["max_chunk_size_tokens"], static["chunk_overlap_tokens"]
        )
        chunks = [c for c in chunks if c.strip()]
        if not chunks:
            raise IngestFailure("invalid_file", "The file holds no text to search.")
        vectors: list[bytes] = []
        for start in range(0, len(chunks), EMBED_BATCH):
            batch = await embedder.embed(chunks[start : start + EMBED_BATCH])
            vectors += [row.astype("<f4").tobytes() for row in batch]
            if not await self._store.renew_ingest(job, int(time.time()) + self._lease):
                return None, [], 0  # deleted, cancelled or retaken meanwhile
        usage = sum(len(c.encode()) for c in chunks) + len(vectors) * 4 * job.dimension
        return chunks, vectors, usage
