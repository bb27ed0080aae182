"""Vector search and ingestion speed: exact numpy search (ranking.top_k_cosine) over 1k,
10k and 100k random unit vectors of the default embedder's dimension, p50/p95 per query,
optionally beside `usearch` (HNSW) when it is installed; and ingestion throughput, chunks
per second through the default embedder, by threads and batch size.

Bounded: a fixed number of queries per size and a fixed corpus for ingestion. The
1-minute load average goes with every figure, since the machine may be shared.

    python bench/vector_search.py [--queries N] [--ingest-chunks N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy

from convostack.retrieval.embedder import DIMENSION, OnnxEmbedder, normalise
from convostack.retrieval.ranking import chunk_text, top_k_cosine

SIZES = (1_000, 10_000, 100_000)
TOP_K = 10
DATA = Path(__file__).resolve().parent / "data" / "retrieval_set.json"


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered), 3), "p95_ms": round(p95, 3)}


def search_latency(size: int, queries: int, rng: numpy.random.Generator) -> dict[str, Any]:
    vectors = normalise(rng.standard_normal((size, DIMENSION), dtype=numpy.float32))
    probes = normalise(rng.standard_normal((queries, DIMENSION), dtype=numpy.float32))
    top_k_cosine(probes[0], vectors, TOP_K)  # warm up
    samples = []
    for probe in probes:
        started = time.perf_counter()
        top_k_cosine(probe, vectors, TOP_K)
        samples.append((time.perf_counter() - started) * 1000)
    row: dict[str, Any] = {"chunks": size, "numpy exact": percentiles(samples)}
    usearch = _usearch_latency(vectors, probes)
    if usearch is not None:
        row["usearch"] = usearch
    row["load"] = load_average()
    return row


def _usearch_latency(vectors: numpy.ndarray, probes: numpy.ndarray) -> dict[str, Any] | None:
    """usearch's HNSW index (cosine, f32, built on 2 threads) over the same vectors: build
    time, per-query p50/p95 and recall@10 against the exact answer. None when usearch is
    not installed."""
    try:
        from usearch.index import Index  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    index = Index(ndim=vectors.shape[1], metric="cos", dtype="f32")
    started = time.perf_counter()
    index.add(numpy.arange(len(vectors)), vectors, threads=2)
    build_s = time.perf_counter() - started
    samples = []
    hits = 0
    for probe in probes:
        started = time.perf_counter()
        found = index.search(probe, TOP_K, threads=1)
        samples.append((time.perf_counter() - started) * 1000)
        exact, _ = top_k_cosine(probe, vectors, TOP_K)
        hits += len(set(exact.tolist()) & {int(key) for key in found.keys})
    return {
        **percentiles(samples),
        "build_s": round(build_s, 2),
        "recall@10": round(hits / (TOP_K * len(probes)), 3),
    }


def ingestion_texts(count: int, max_tokens: int, overlap: int) -> list[str]:
    """`count` chunks cut from the labelled set's text, as ingestion would cut a file."""
    chunks = [c["text"] for c in json.loads(DATA.read_text())["chunks"]]
    document = "\n\n".join(chunks)
    texts: list[str] = []
    while len(texts) < count:
        texts.extend(chunk_text(document, max_tokens, overlap))
    return texts[:count]


async def ingestion(count: int) -> list[dict[str, Any]]:
    rows = []
    for label, (max_tokens, overlap) in {
        "auto 800/400": (800, 400),
        "static 200/50": (200, 50),
    }.items():
        texts = ingestion_texts(count, max_tokens, overlap)
        for threads in (1, 2):
            for batch_size in (8, 32):
                embedder = OnnxEmbedder(threads=threads, batch_size=batch_size)
                embedder.load()
                await embedder.embed(texts[:8])  # warm up
                started = time.perf_counter()
                await embedder.embed(texts)
                seconds = time.perf_counter() - started
                rows.append({
                    "chunking": label,
                    "threads": threads,
                    "batch": batch_size,
                    "chunks": len(texts),
                    "chunks_per_s": round(len(texts) / seconds, 1),
                    "load": load_average(),
                })  # fmt: skip
    return rows


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"Exact search, top {TOP_K}, {summary['queries']} queries per size, "
        f"{DIMENSION} dimensions:",
        "",
        "| chunks | numpy p50 ms | numpy p95 ms | usearch p50 ms | usearch p95 ms | "
        "usearch build s | usearch recall@10 | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in summary["search"]:
        exact = row["numpy exact"]
        approx = row.get("usearch") or {}
        cells = [f"{row['chunks']:,}", exact["p50_ms"], exact["p95_ms"]]
        cells += [approx.get(key, "-") for key in ("p50_ms", "p95_ms", "build_s", "recall@10")]
        lines.append("| " + " | ".join(str(c) for c in [*cells, row["load"]]) + " |")
    lines += [
        "",
        "| chunking | threads | batch | chunks | chunks/s | load |",
        "|---|---|---|---|---|---|",
    ]
    for row in summary["ingestion"]:
        cells = [row[k] for k in ("chunking", "threads", "batch", "chunks", "chunks_per_s", "load")]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200, help="queries per size")
    parser.add_argument("--ingest-chunks", type=int, default=256, help="chunks per ingestion run")
    parser.add_argument("--json", action="store_true", help="one JSON line instead")
    args = parser.parse_args()
    rng = numpy.random.default_rng(1)
    # Ingestion first: importing onnxruntime after usearch crashes the process (a
    # segmentation fault, usearch 2.26.6 with onnxruntime 1.32.0); the other order works.
    ingested = asyncio.run(ingestion(args.ingest_chunks))
    summary: dict[str, Any] = {
        "benchmark": "vector_search",
        "queries": args.queries,
        "cpus": os.cpu_count(),
        "search": [search_latency(size, args.queries, rng) for size in SIZES],
        "ingestion": ingested,
    }
    print(json.dumps(summary) if args.json else markdown(summary))


if __name__ == "__main__":
    main()
