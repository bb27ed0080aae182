"""Ranking and chunking: pure functions over arrays and strings, no storage, no model.

- `top_k_cosine`: exact nearest neighbours by dot product over L2-normalised vectors (a
  matrix-vector product and a partial sort; bench/vector_search.py measures it).
- `fuse`: keyword and vector results merged by reciprocal rank fusion (RRF), optionally
  weighted as OpenAI's `ranking_options.hybrid_search` (`text_weight`, `embedding_weight`)
  weights it. Ranks, not scores, are fused: BM25 scores and cosines are on scales that
  cannot be compared. Its constant was chosen by measurement (bench/retrieval_eval.py).
- `chunk_text`: fixed windows of tokens with overlap, OpenAI's `chunking_strategy`
  (auto is 800 tokens with 400 of overlap).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy loads on first use, not at start-up
    import numpy


# The RRF constant: smaller values weigh the top ranks more. 60, the original paper's
# (for lists of a thousand TREC documents), let hybrid search lose to vector search alone
# on nDCG@10 in bench/retrieval_eval.py; 10 beat both halves on recall@5 and nDCG@10, and
# beat 60 on each half of the queries (bench/RESULTS.md).
RRF_K = 10


def top_k_cosine(
    query: numpy.ndarray, vectors: numpy.ndarray, k: int
) -> tuple[numpy.ndarray, numpy.ndarray]:
    """The `k` rows of `vectors` most similar to `query` (both L2-normalised, so the dot
    product is the cosine): (row indices int64, scores float32), best first; ties go to
    the lower row. Exact."""
    import numpy

    matrix = numpy.asarray(vectors, dtype=numpy.float32)
    if matrix.ndim != 2:
        raise ValueError(f"vectors must be a matrix, not of shape {matrix.shape}")
    rows = matrix.shape[0]
    k = min(k, rows)
    if k <= 0:
        return numpy.zeros(0, dtype=numpy.int64), numpy.zeros(0, dtype=numpy.float32)
    scores = matrix @ numpy.asarray(query, dtype=numpy.float32).reshape(-1)
    candidates = numpy.argpartition(-scores, k - 1)[:k] if k < rows else numpy.arange(rows)
    # Sorted by score, then by row: the same answer on every run and every machine.
    order = numpy.lexsort((candidates, -scores[candidates]))
    best = candidates[order].astype(numpy.int64)
    return best, scores[best].astype(numpy.float32)


def fuse(
    keyword: list[tuple[str, float]],
    vector: list[tuple[str, float]],
    *,
    k: int = RRF_K,
    keyword_weight: float | None = None,
    vector_weight: float | None = None,
) -> list[tuple[str, float]]:
    """Reciprocal rank fusion of two result lists (ids best first; their scores are not
    used): an id scores the sum over lists of weight / (k + rank), rank from 1. Without
    weights both count 1; with one given, the other counts 1. Scores are divided by the
    best possible (first in both lists), so they lie in [0, 1]. Best first; ties keep the
    order of first appearance, keyword list first. An id repeated in one list counts at
    its best rank."""
    if k < 0:
        raise ValueError("k must not be negative")
    weights = (
        1.0 if keyword_weight is None else float(keyword_weight),
        1.0 if vector_weight is None else float(vector_weight),
    )
    if min(weights) < 0 or sum(weights) <= 0:
        raise ValueError("weights must not be negative, and one must be positive")
    fused: dict[str, float] = {}
    for results, weight in zip((keyword, vector), weights, strict=True):
        seen: set[str] = set()
        for rank, (item, _score) in enumerate(results, start=1):
            if item in seen:
                continue
            seen.add(item)
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    best_possible = sum(weights) / (k + 1)
    ranked = sorted(fused.items(), key=lambda entry: -entry[1])  # stable: ties keep order
    return [(item, min(1.0, score / best_possible)) for item, score in ranked]


_WORD = re.compile(r"\w+")


def fts5_query(text: str) -> str:
    """A SQLite FTS5 MATCH expression for free text: each word quoted (so that FTS5's
    own syntax, AND, NEAR, "-" or ":", in a user's query is just text) and OR-ed, for
    BM25 to rank; "" when the text has no word (match nothing then)."""
    words = dict.fromkeys(word.lower() for word in _WORD.findall(text))
    return " OR ".join(f'"{word}"' for word in words)


# A token, approximately as OpenAI's tokenizer (cl100k) counts them in chunking: an ASCII
# word of up to 8 letters (longer words count one per 8), up to 3 digits, each letter of
# another script (a CJK character is about one token; accented Latin text is overcounted,
# which only makes its chunks smaller), each punctuation mark. An estimate that needs no
# tokenizer file (cl100k's cannot be loaded offline); common long English words are one
# cl100k token but two here, so chunks of English prose come out somewhat smaller.
_TOKEN = re.compile(r"[A-Za-z]{1,8}|\d{1,3}|[^\W\d_A-Za-z]|_|[^\w\s]")


def count_tokens(text: str) -> int:
    """The approximate token count that `chunk_text` uses."""
    return sum(1 for _ in _TOKEN.finditer(text))


def chunk_text(text: str, max_tokens: int = 800, overlap_tokens: int = 400) -> list[str]:
    """`text` cut into windows of at most `max_tokens` tokens (as `count_tokens` counts
    them), each starting `max_tokens - overlap_tokens` tokens after the previous one.
    Windows end before a word, not inside it, where the window holds more than one word.
    Each chunk is a slice of `text`, without its leading or trailing space; a text with
    no token gives no chunk."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError("overlap_tokens must be at least 0 and less than max_tokens")
    spans = [match.span() for match in _TOKEN.finditer(text)]
    count = len(spans)
    if count == 0:
        return []

    def starts_a_word(n: int) -> bool:
        # A token right after another with no space between continues the same word,
        # unless one of the two is punctuation.
        if n == 0 or n >= count or spans[n][0] > spans[n - 1][1]:
            return True
        return not (text[spans[n][0]].isalnum() and text[spans[n - 1][1] - 1].isalnum())

    def word_start_at_or_before(n: int, floor: int) -> int:
        found = n
        while found > floor and not starts_a_word(found):
            found -= 1
        return found if found > floor else n

    chunks: list[str] = []
    start = 0
    while True:
        end = min(start + max_tokens, count)
        if end < count:
            end = word_start_at_or_before(end, start)
        chunks.append(text[spans[start][0] : spans[end - 1][1]])
        if end >= count:
            return chunks
        following = word_start_at_or_before(end - overlap_tokens, start)
        while following < end and not starts_a_word(following):
            following += 1  # no word starts in the overlap before it: the next one
        start = following if following > start else end
