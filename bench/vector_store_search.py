"""Vector store search latency through the service's own path (vector_stores/search.py):
attribute filter, FTS5 BM25 keyword half, exact cosine over the cached matrix, fusion and
the chunks' text read back; SQLite, 384-dimension vectors, 100 files, the query's
embedding precomputed (the embedder's own cost is measured in bench/vector_search.py).
Prints a JSON summary: p50 and p95 milliseconds per search at each size.

    python bench/vector_store_search.py [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy

from convostack.storage.files_base import FileRow, IngestJob, NewStoreFile, VectorStoreRow
from convostack.storage.sqlite import SqliteStore
from convostack.vector_stores.models import AUTO_CHUNKING
from convostack.vector_stores.search import Searcher

DIMENSION = 384
FILES = 100
WORDS = [f"w{n}" for n in range(5000)]
OWNER = "bench"


class _FixedEmbedder:
    model = "bench"
    dimension = DIMENSION

    def __init__(self) -> None:
        self._rng = numpy.random.default_rng(1)

    async def embed(self, texts: list[str]) -> numpy.ndarray:
        out = self._rng.standard_normal((len(texts), DIMENSION)).astype(numpy.float32)
        unit: numpy.ndarray = out / numpy.linalg.norm(out, axis=1, keepdims=True)
        return unit


class _Source:
    def __init__(self) -> None:
        self.embedder = _FixedEmbedder()

    def get(self) -> _FixedEmbedder:
        return self.embedder


async def _fill(store: SqliteStore, store_id: str, chunks: int) -> None:
    rng = numpy.random.default_rng(0)
    await store.create_vector_store(
        OWNER, VectorStoreRow(store_id, 0, "b", {}, None, 0, "bench", DIMENSION), [], None
    )
    for f in range(FILES):
        file_id = f"file_{store_id}_{f}"
        await store.create_file(OWNER, FileRow(file_id, 0, f"{f}.txt", "assistants", 1, None,
                                               None), b"x")  # fmt: skip
        new = NewStoreFile(file_id, {"f": f}, AUTO_CHUNKING)
        await store.add_store_files(OWNER, store_id, [new], None)
        job = IngestJob(OWNER, store_id, file_id, 1, AUTO_CHUNKING, "bench", DIMENSION)
        await store.claim_ingest(int(time.time()), 600, ("bench", DIMENSION))
        count = chunks // FILES
        vectors = rng.standard_normal((count, DIMENSION)).astype(numpy.float32)
        vectors /= numpy.linalg.norm(vectors, axis=1, keepdims=True)
        texts = [" ".join(random.choices(WORDS, k=60)) for _ in range(count)]
        assert await store.finish_ingest(job, texts, [v.tobytes() for v in vectors], 1)


async def main(sizes: list[int]) -> None:
    random.seed(0)
    summary = {}
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "bench.db")
        await store.start()
        searcher = Searcher(store, _Source())  # type: ignore[arg-type]
        for size in sizes:
            store_id = f"vs_{size}"
            await _fill(store, store_id, size)
            await searcher.search(OWNER, store_id, ["w1 w2"], max_results=10, filters=None,
                                  ranking=None)  # fmt: skip  # loads the cache
            samples = []
            for _ in range(50):
                query = " ".join(random.choices(WORDS, k=4))
                start = time.perf_counter()
                await searcher.search(OWNER, store_id, [query], max_results=10, filters=None,
                                      ranking=None)  # fmt: skip
                samples.append(time.perf_counter() - start)
            samples.sort()
            summary[str(size)] = {
                "p50_ms": round(statistics.median(samples) * 1000, 2),
                "p95_ms": round(samples[int(len(samples) * 0.95) - 1] * 1000, 2),
            }
        await store.close()
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    asyncio.run(main([int(s) for s in args.sizes.split(",")]))
