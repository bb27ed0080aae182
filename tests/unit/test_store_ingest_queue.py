"""The ingestion queue in the store, on SQLite and PostgreSQL: a queued file is taken by
one claim at a time, a claim whose process died (its lease ran out) is taken again, a
stale claim cannot complete the file, and a file interrupted too often fails."""

from __future__ import annotations

import asyncio

import numpy

from convostack.storage.base import Store
from convostack.storage.files_base import FileRow, NewStoreFile, VectorStoreRow
from convostack.vector_stores.embedding import EmbedderSource
from convostack.vector_stores.ingest import MAX_ATTEMPTS, Ingestor
from convostack.vector_stores.models import AUTO_CHUNKING

OWNER = "tenant"
NOW = 1_700_000_000
HASH = ("testing-hash", 256)


async def _queue_one(store: Store, text: bytes = b"the heron waits by the river") -> str:
    await store.create_file(OWNER, FileRow("file_a", NOW, "a.txt", "assistants", len(text),
                                           None, "text/plain"), text)  # fmt: skip
    row = VectorStoreRow("vs_a", NOW, "s", {}, None, NOW, "testing-hash", 256)
    await store.create_vector_store(
        OWNER, row, [NewStoreFile("file_a", {"k": 1}, AUTO_CHUNKING)], None
    )
    return "vs_a"


async def test_a_lease_that_ran_out_is_taken_again(store: Store) -> None:
    await _queue_one(store)
    first = await store.claim_ingest(NOW, 60, HASH)
    assert first is not None
    assert first.attempts == 1
    assert await store.claim_ingest(NOW + 30, 60, HASH) is None  # held
    again = await store.claim_ingest(NOW + 61, 60, HASH)  # its process died: taken again
    assert again is not None
    assert (again.file_id, again.attempts) == ("file_a", 2)
    vector = numpy.ones(256, dtype="<f4").tobytes()
    assert not await store.finish_ingest(first, ["stale"], [vector], 10)
    assert await store.finish_ingest(again, ["the heron waits"], [vector], 10)
    done = await store.get_store_file(OWNER, "vs_a", "file_a")
    assert (done.status, done.usage_bytes) == ("completed", 10)
    assert await store.keyword_search("vs_a", ["heron"], ["file_a"], 5)
    assert await store.claim_ingest(NOW + 1000, 60, HASH) is None


async def test_a_process_with_another_embedder_leaves_the_file_for_a_lease(
    store: Store,
) -> None:
    await _queue_one(store)
    other = ("all-minilm-l6-v2", 384)
    assert await store.claim_ingest(NOW, 60, other) is None
    assert await store.claim_ingest(NOW + 60, 60, other) is None
    orphan = await store.claim_ingest(NOW + 61, 60, other)  # nobody able took it: fail it
    assert orphan is not None
    assert (orphan.embedding_model, orphan.dimension) == HASH
    ingestor = Ingestor(store, EmbedderSource("default"), poll_seconds=1, lease_seconds=60)
    await ingestor.ingest(orphan)
    failed = await store.get_store_file(OWNER, "vs_a", "file_a")
    assert failed.status == "failed"
    assert failed.last_error is not None
    assert "testing-hash" in failed.last_error["message"]


async def test_concurrent_claims_take_a_file_once(store: Store) -> None:
    await _queue_one(store)
    claims = await asyncio.gather(*(store.claim_ingest(NOW, 60, HASH) for _ in range(5)))
    assert sum(c is not None for c in claims) == 1


async def test_ingestion_end_to_end_and_too_many_attempts(store: Store) -> None:
    await _queue_one(store)
    ingestor = Ingestor(store, EmbedderSource("testing-hash"), poll_seconds=1, lease_seconds=60)
    job = await store.claim_ingest(NOW, 60, HASH)
    assert job is not None
    await ingestor.ingest(job)
    assert (await store.get_store_file(OWNER, "vs_a", "file_a")).status == "completed"
    generation = await store.store_generation("vs_a")
    vectors = await store.store_vectors("vs_a")
    assert len(vectors.vectors) == len(vectors.chunk_ids) * 256 * 4
    await store.delete_file(OWNER, "file_a")
    assert await store.searchable_files(OWNER, "vs_a") == {}
    assert await store.store_generation("vs_a") > generation

    await store.create_file(OWNER, FileRow("file_b", NOW, "b.txt", "assistants", 1, None, None),
                            b"b")  # fmt: skip
    await store.add_store_files(OWNER, "vs_a", [NewStoreFile("file_b", {}, AUTO_CHUNKING)], None)
    for n in range(MAX_ATTEMPTS + 1):
        job = await store.claim_ingest(NOW + n * 100, 60, HASH)
    assert job is not None
    await ingestor.ingest(job)
    failed = await store.get_store_file(OWNER, "vs_a", "file_b")
    assert failed.status == "failed"
    assert failed.last_error is not None
    assert failed.last_error["code"] == "server_error"
