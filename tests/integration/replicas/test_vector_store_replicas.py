"""Files and vector stores on two replicas of one PostgreSQL database: a file uploaded
to one is read by the other, ingestion is done by whichever replica takes the queued row,
search answers the same on both, and a file deleted on one is gone from the other's
search at once (its cached vectors are stale by the store's generation)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from convostack.testing.replicas import Replica, replica
from convostack.testing.upstream import Upstream

# The deterministic test embedder, chosen explicitly (never a default).
ENV = {"CONVOSTACK_EMBEDDER": "testing-hash", "CONVOSTACK_INGEST_POLL_SECONDS": "0.2"}


@pytest.fixture(scope="module")
def pair(postgres_db: str, upstream: Upstream) -> Iterator[tuple[Replica, Replica]]:
    with (
        replica(postgres_db, upstream.url, ENV) as a,
        replica(postgres_db, upstream.url, ENV) as b,
    ):
        yield a, b


def _wait_completed(r: Replica, store_id: str, file_ids: list[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        counts = r.client.vector_stores.retrieve(store_id).file_counts
        if counts.completed == len(file_ids):
            return
        assert counts.failed == 0
        time.sleep(0.1)
    raise AssertionError("files not ingested within 30 s")


def test_upload_on_one_ingest_and_search_on_both(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    texts = [f"document {n} about the lighthouse keeper number {n}".encode() for n in range(6)]
    texts.append(b"the otter sleeps holding hands")
    file_ids = [a.client.files.create(file=(f"d{n}.txt", t), purpose="assistants").id
                for n, t in enumerate(texts)]  # fmt: skip
    assert b.client.files.content(file_ids[-1]).read() == texts[-1]
    store = b.client.vector_stores.create(name="shared", file_ids=file_ids)
    _wait_completed(a, store.id, file_ids)
    for r in (a, b):
        found = r.client.vector_stores.search(store.id, query="otter holding hands")
        assert found.data[0].file_id == file_ids[-1]
    a.client.files.delete(file_ids[-1])
    after = b.client.vector_stores.search(store.id, query="otter holding hands")
    assert file_ids[-1] not in {r.file_id for r in after.data}
    assert b.client.vector_stores.retrieve(store.id).file_counts.completed == len(file_ids) - 1
