"""Hybrid search over one vector store: keyword (SQLite FTS5 BM25, PostgreSQL full text)
and vector similarity, fused by reciprocal rank (`ranking_options.hybrid_search` weighs
the halves).

Vectors are searched exactly (`top_k_cosine`, one matrix product) over a copy of the
store's vectors kept in this process and reloaded when the store's `generation` moves
(a file added or deleted anywhere, by any replica): checking it is one indexed query per
search. Attribute filters pick the files first, so both halves search only those.

Measured (bench/vector_store_search.py, SQLite, 384 dimensions, 2 shared cores, the
query's embedding aside): p95 per search 2.3 ms at 1k chunks, 5.5-6.4 ms at 10k, 27-45 ms
at 100k. The keyword query (waiting on the database's thread) and the product (in a
thread of its own) run side by side, and BLAS gets one thread: the product is bound by
memory (150 MB of float32 per query at 100k), and a second thread on two shared cores only
waits on the first. Before both, 100k took 73 ms p95.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from convostack.errors import InvalidRequestError, NotFoundError
from convostack.storage.base import Store
from convostack.storage.files_base import VectorStoreMissing, VectorStoreRow
from convostack.vector_stores.embedding import EmbedderSource
from convostack.vector_stores.filters import matches
from convostack.vector_stores.models import RankingOptions
from convostack.vector_stores.service import check_not_expired, translate

if TYPE_CHECKING:  # numpy loads on first use, not at start-up
    import numpy

# Candidates each half contributes to the fusion, per query.
CANDIDATES = 50
# Stores whose vectors one process keeps in memory at once (least recently used leave).
CACHED_STORES = 16
# Past this many vectors, the exact search runs in a thread (about 2 ms per 10k rows).
INLINE_ROWS = 20_000
_WORDS = re.compile(r"\w+")
# A search moves a store's last_active_at once it is this old (expiry counts in days).
TOUCH_SECONDS = 3600


@dataclass(frozen=True)
class _Vectors:
    generation: int
    chunk_ids: numpy.ndarray
    files: list[str]  # the distinct file ids
    file_index: numpy.ndarray  # each chunk's file, as its position in `files`
    matrix: numpy.ndarray

    def among(self, allowed: list[str]) -> tuple[numpy.ndarray, numpy.ndarray]:
        """Chunk ids and vectors of the allowed files: the cached arrays themselves when
        every file is allowed (no filter), a copy of the allowed rows otherwise."""
        import numpy

        wanted = set(allowed)
        keep = numpy.array([f in wanted for f in self.files], dtype=bool)
        if keep.all():
            return self.chunk_ids, self.matrix
        mask = keep[self.file_index]
        return self.chunk_ids[mask], self.matrix[mask]


@functools.cache
def _one_blas_thread() -> None:
    """The product is bound by memory, not arithmetic: a second BLAS thread on a shared
    2-core machine only makes the two wait on each other (p95 at 100k chunks: 37 ms
    with one thread against 61 with two, bench/RESULTS.md). Process-wide, once."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


class Searcher:
    def __init__(self, store: Store, embedders: EmbedderSource):
        self._store = store
        self._embedders = embedders
        self._cache: OrderedDict[str, _Vectors] = OrderedDict()

    async def search(
        self,
        owner: str,
        vector_store_id: str,
        queries: list[str],
        *,
        max_results: int,
        filters: Any,
        ranking: RankingOptions | None,
    ) -> list[dict[str, Any]]:
        """Results best first: file id and name, attributes, score in [0, 1], text."""
        from convostack.retrieval.ranking import fuse, top_k_cosine

        store_row = await translate(self._store.get_vector_store(owner, vector_store_id))
        check_not_expired(store_row, "vector_store_id")
        await self._touch(owner, store_row)
        files = await translate(self._store.searchable_files(owner, vector_store_id))
        allowed = [f for f, (_, attributes) in files.items() if matches(filters, attributes)]
        if not allowed:
            return []
        embedder = self._embedders.get()
        if (embedder.model, embedder.dimension) != (store_row.embedding_model, store_row.dimension):
            raise InvalidRequestError(
                f"The vector store '{vector_store_id}' holds {store_row.embedding_model} "
                f"embeddings ({store_row.dimension} dimensions); this server embeds with "
                f"{embedder.model} ({embedder.dimension}).",
                code="embedding_model_mismatch", param="vector_store_id",
            )  # fmt: skip
        hybrid = ranking.hybrid_search if ranking else None
        weights = (hybrid.text_weight, hybrid.embedding_weight) if hybrid else (1.0, 1.0)
        if sum(weights) <= 0:
            weights = (1.0, 1.0)
        vectors = await self._vectors(vector_store_id)
        ids, matrix = vectors.among(allowed)
        query_vectors = await embedder.embed(queries)
        best: dict[str, float] = {}
        for query, query_vector in zip(queries, query_vectors, strict=True):
            words = _WORDS.findall(query.lower())
            k = min(CANDIDATES, len(ids))
            if len(ids) > INLINE_ROWS:
                # Milliseconds of arithmetic, off the loop and beside the keyword query
                # (which waits on the database's own thread): the slower of the two, not
                # their sum.
                keyword, (rows, scores) = await asyncio.gather(
                    self._store.keyword_search(vector_store_id, words, allowed, CANDIDATES),
                    asyncio.to_thread(top_k_cosine, query_vector, matrix, k),
                )
            else:
                keyword = await self._store.keyword_search(
                    vector_store_id, words, allowed, CANDIDATES
                )
                rows, scores = top_k_cosine(query_vector, matrix, k) if k else ([], [])
            nearest = [(str(ids[r]), float(s)) for r, s in zip(rows, scores, strict=True)]
            fused = fuse(
                [(str(c), s) for c, s in keyword],
                nearest,
                keyword_weight=weights[0],
                vector_weight=weights[1],
            )
            for chunk_id, score in fused:
                best[chunk_id] = max(best.get(chunk_id, 0.0), score)
        # fuse's scores are over the best possible (first in both lists): in [0, 1].
        threshold = ranking.score_threshold if ranking else 0.0
        ranked = [(int(c), s) for c, s in best.items() if s >= threshold]
        ranked.sort(key=lambda pair: -pair[1])
        ranked = ranked[:max_results]
        chunks = await self._store.chunks([c for c, _ in ranked])
        results = []
        for at, score in ranked:
            chunk = chunks.get(at)
            if chunk is None or chunk.file_id not in files:
                continue  # deleted since
            filename, attributes = files[chunk.file_id]
            results.append({
                "file_id": chunk.file_id, "filename": filename, "score": round(score, 6),
                "attributes": attributes, "content": [{"type": "text", "text": chunk.text}],
            })  # fmt: skip
        return results

    async def check(self, owner: str, vector_store_id: str, param: str) -> None:
        """A 404 naming `param` unless the store exists and is the owner's, a 400 if it
        expired."""
        try:
            row = await self._store.get_vector_store(owner, vector_store_id)
        except VectorStoreMissing:
            raise NotFoundError(
                f"No vector store found with id '{vector_store_id}'.", param=param
            ) from None
        check_not_expired(row, param)

    async def _touch(self, owner: str, row: VectorStoreRow) -> None:
        """A search is activity: `last_active_at` moves (at most hourly: expiry counts in
        days, and a write per search would cost more than it tells)."""
        now = int(time.time())
        if now - row.last_active_at >= TOUCH_SECONDS:
            await translate(self._store.update_vector_store(owner, row.id, {"last_active_at": now}))

    async def _vectors(self, vector_store_id: str) -> _Vectors:
        import numpy

        _one_blas_thread()
        cached = self._cache.get(vector_store_id)
        generation = await self._store.store_generation(vector_store_id)
        if cached is not None and cached.generation == generation:
            self._cache.move_to_end(vector_store_id)
            return cached
        loaded = await self._store.store_vectors(vector_store_id)
        dimension = self._embedders.get().dimension
        matrix = numpy.frombuffer(loaded.vectors, dtype="<f4").reshape(-1, dimension)
        files = list(dict.fromkeys(loaded.file_ids))
        position = {file_id: n for n, file_id in enumerate(files)}
        fresh = _Vectors(
            loaded.generation, numpy.array(loaded.chunk_ids, dtype=numpy.int64), files,
            numpy.array([position[f] for f in loaded.file_ids], dtype=numpy.int32), matrix,
        )  # fmt: skip
        self._cache[vector_store_id] = fresh
        while len(self._cache) > CACHED_STORES:
            self._cache.popitem(last=False)
        return fresh
