"""Search quality on a labelled set: keyword-only (SQLite FTS5 BM25), vector-only (the
default embedder, exact cosine) and hybrid (reciprocal rank fusion of the two), as
recall@5 and nDCG@10, overall and per kind of query.

The set, bench/data/retrieval_set.json, was written for convostack: 200 short chunks on
20 topics and 50 queries with the ids of the chunks that answer them; each query's kind
says whether its answer is found by a rare term or code (k), by meaning (s) or by both
(m). The hybrid is also run over a small grid of RRF constants and weights (OpenAI's
`ranking_options.hybrid_search`), to see whether the defaults are reasonable; the grid is
reported, not used to pick the default on the same data it is scored on.

    python bench/retrieval_eval.py [--json]

Prints Markdown tables (or, with --json, one JSON summary line).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy

from convostack.retrieval.embedder import default_embedder
from convostack.retrieval.ranking import RRF_K, fts5_query, fuse, top_k_cosine

DATA = Path(__file__).resolve().parent / "data" / "retrieval_set.json"
CANDIDATES = 50  # how many results of each half go into the fusion
RRF_KS = (1, 3, 10, 20, 60)
WEIGHTS = ((1.0, 1.0), (0.3, 0.7), (0.4, 0.6), (0.7, 0.3))  # (text, embedding)

Ranked = list[tuple[str, float]]


def recall_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def ndcg_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Binary relevance: a relevant id at rank r (from 1) gains 1 / log2(r + 1)."""
    gain = sum(1 / math.log2(r + 2) for r, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1 / math.log2(r + 2) for r in range(min(k, len(relevant))))
    return gain / ideal


class KeywordIndex:
    """The chunks in an in-memory FTS5 table (Porter stemming over unicode61 words)."""

    def __init__(self, chunks: list[dict[str, str]]):
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE VIRTUAL TABLE chunks USING fts5(id UNINDEXED, body, "
                        "tokenize = 'porter unicode61')")  # fmt: skip
        self.db.executemany(
            "INSERT INTO chunks (id, body) VALUES (?, ?)", [(c["id"], c["text"]) for c in chunks]
        )

    def search(self, query: str, limit: int) -> Ranked:
        expression = fts5_query(query)
        if not expression:
            return []
        rows = self.db.execute(
            "SELECT id, bm25(chunks) FROM chunks WHERE chunks MATCH ? ORDER BY bm25(chunks) "
            "LIMIT ?",
            (expression, limit),
        ).fetchall()
        return [(item, -score) for item, score in rows]  # bm25(): lower is better


def score(
    queries: list[dict[str, Any]], search: Callable[[int], Ranked]
) -> dict[str, dict[str, float]]:
    """recall@5 and nDCG@10 of `search(query number)`, overall and per kind."""
    by_kind: dict[str, list[tuple[float, float]]] = {}
    for n, query in enumerate(queries):
        ranked = [item for item, _ in search(n)]
        relevant = set(query["relevant"])
        pair = (recall_at(ranked, relevant, 5), ndcg_at(ranked, relevant, 10))
        by_kind.setdefault("all", []).append(pair)
        by_kind.setdefault(query["kind"], []).append(pair)
    return {
        kind: {
            "recall@5": round(sum(p[0] for p in pairs) / len(pairs), 3),
            "ndcg@10": round(sum(p[1] for p in pairs) / len(pairs), 3),
            "queries": len(pairs),
        }
        for kind, pairs in by_kind.items()
    }


def _renumbered(method: Callable[[int], Ranked], numbers: list[int], n: int) -> Ranked:
    return method(numbers[n])


def _fused(
    keyword: list[Ranked], vector: list[Ranked], k: int, text: float, embedding: float, n: int
) -> Ranked:
    return fuse(keyword[n], vector[n], k=k, keyword_weight=text, vector_weight=embedding)


async def evaluate() -> dict[str, Any]:
    data = json.loads(DATA.read_text())
    chunks, queries = data["chunks"], data["queries"]
    ids = [c["id"] for c in chunks]
    embedder = default_embedder()
    started = time.perf_counter()
    vectors = await embedder.embed([c["text"] for c in chunks])
    embed_seconds = time.perf_counter() - started
    query_vectors = await embedder.embed([q["query"] for q in queries])
    index = KeywordIndex(chunks)

    keyword = [index.search(q["query"], CANDIDATES) for q in queries]
    vector: list[Ranked] = []
    for query_vector in query_vectors:
        rows, scores = top_k_cosine(query_vector, vectors, CANDIDATES)
        vector.append([(ids[r], float(s)) for r, s in zip(rows, scores, strict=True)])

    results: dict[str, Any] = {
        "keyword (FTS5 BM25)": score(queries, lambda n: keyword[n]),
        "vector (all-minilm-l6-v2)": score(queries, lambda n: vector[n]),
        f"hybrid (RRF, default k={RRF_K})": score(queries, lambda n: fuse(keyword[n], vector[n])),
    }
    # The same on each half of the queries (even and odd numbers): a constant that wins
    # on both halves is less likely to be fitted to these 50 queries.
    methods: dict[str, Callable[[int], Ranked]] = {
        "keyword": lambda n: keyword[n],
        "vector": lambda n: vector[n],
        f"hybrid k={RRF_K}": lambda n: fuse(keyword[n], vector[n]),
        "hybrid k=60": lambda n: fuse(keyword[n], vector[n], k=60),
    }
    halves: dict[str, Any] = {}
    for half in (0, 1):
        numbers = list(range(half, len(queries), 2))
        subset = [queries[n] for n in numbers]
        for name, method in methods.items():
            table = score(subset, functools.partial(_renumbered, method, numbers))["all"]
            halves.setdefault(name, {})[f"half {half}"] = table
    grid: dict[str, Any] = {}
    for k in RRF_KS:
        for text_weight, embedding_weight in WEIGHTS:
            grid[f"k={k} text={text_weight} embedding={embedding_weight}"] = score(
                queries,
                functools.partial(_fused, keyword, vector, k, text_weight, embedding_weight),
            )
    return {
        "benchmark": "retrieval_eval",
        "chunks": len(chunks),
        "queries": len(queries),
        "embed_chunks_seconds": round(embed_seconds, 2),
        "results": results,
        "halves": halves,
        "grid": grid,
        "dimension": int(numpy.shape(vectors)[1]),
    }


def markdown(summary: dict[str, Any]) -> str:
    kinds = ("all", "k", "s", "m")
    head = "| method | " + " | ".join(f"recall@5 ({k})" for k in kinds)
    head += " | " + " | ".join(f"nDCG@10 ({k})" for k in kinds) + " |"
    lines = [head, "|---" * (1 + 2 * len(kinds)) + "|"]
    for name, table in [*summary["results"].items(), *summary["grid"].items()]:
        cells = [str(table[k]["recall@5"]) for k in kinds] + [
            str(table[k]["ndcg@10"]) for k in kinds
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    halves_head = "| method | half 0 recall@5 | half 0 nDCG@10 | half 1 recall@5 | half 1 nDCG@10 |"
    lines += ["", halves_head, "|---|---|---|---|---|"]
    for name, by_half in summary["halves"].items():
        cells = [str(by_half[h][m]) for h in ("half 0", "half 1") for m in ("recall@5", "ndcg@10")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    counts = ", ".join(f"{k}: {summary['results']['keyword (FTS5 BM25)'][k]['queries']}"
                       for k in kinds)  # fmt: skip
    return "\n".join([*lines, "", f"queries per kind: {counts}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON line instead")
    args = parser.parse_args()
    summary = asyncio.run(evaluate())
    print(json.dumps(summary) if args.json else markdown(summary))


if __name__ == "__main__":
    main()
