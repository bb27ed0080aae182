"""retrieval/ranking.py: exact top-k, rank fusion and chunking (pure functions)."""

from __future__ import annotations

import re
import sqlite3

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convostack.retrieval.embedder import normalise
from convostack.retrieval.ranking import chunk_text, count_tokens, fts5_query, fuse, top_k_cosine

# --- top_k_cosine -----------------------------------------------------------------------


def test_top_k_is_exact_and_best_first() -> None:
    rng = numpy.random.default_rng(7)
    vectors = normalise(rng.standard_normal((500, 16)))
    query = normalise(rng.standard_normal((1, 16)))[0]
    rows, scores = top_k_cosine(query, vectors, 10)
    expected = numpy.argsort(-(vectors @ query), kind="stable")[:10]
    assert rows.tolist() == expected.tolist()
    assert rows.dtype == numpy.int64
    assert scores.dtype == numpy.float32
    assert numpy.all(numpy.diff(scores) <= 0)
    numpy.testing.assert_allclose(scores, vectors[rows] @ query, rtol=1e-6)


def test_top_k_larger_than_the_rows_and_empty() -> None:
    vectors = numpy.eye(3, dtype=numpy.float32)
    rows, scores = top_k_cosine(numpy.array([0.0, 1.0, 0.0]), vectors, 10)
    assert rows.tolist() == [1, 0, 2]  # ties (0 and 2 both score 0) go to the lower row
    assert scores.tolist() == [1.0, 0.0, 0.0]
    empty_rows, empty_scores = top_k_cosine(numpy.ones(3), numpy.zeros((0, 3)), 5)
    assert empty_rows.shape == empty_scores.shape == (0,)
    assert top_k_cosine(numpy.ones(3), vectors, 0)[0].shape == (0,)


def test_top_k_refuses_a_vector_for_a_matrix() -> None:
    with pytest.raises(ValueError, match="matrix"):
        top_k_cosine(numpy.ones(3), numpy.ones(3), 1)


# --- fuse -------------------------------------------------------------------------------


def test_rrf_rewards_what_both_lists_find() -> None:
    keyword = [("a", 9.0), ("b", 5.0), ("c", 1.0)]
    vector = [("c", 0.9), ("d", 0.8), ("a", 0.7)]
    fused = fuse(keyword, vector, k=60)
    assert [item for item, _ in fused] == ["a", "c", "b", "d"]
    assert fused[0][1] == pytest.approx((1 / 61 + 1 / 63) / (2 / 61))


def test_first_in_both_scores_one_and_scores_lie_in_the_unit_interval() -> None:
    fused = fuse([("x", 1.0), ("y", 0.5)], [("x", 0.3)])
    assert fused[0] == ("x", 1.0)
    assert all(0.0 <= score <= 1.0 for _, score in fused)


def test_weights_tilt_the_fusion() -> None:
    keyword = [("k", 1.0)]
    vector = [("v", 1.0)]
    assert fuse(keyword, vector, keyword_weight=0.2, vector_weight=0.8)[0][0] == "v"
    assert fuse(keyword, vector, keyword_weight=0.8, vector_weight=0.2)[0][0] == "k"
    # Only the vector list counts: the keyword-only id scores 0 and comes last.
    only_vector = fuse(keyword, vector, keyword_weight=0.0)
    assert only_vector == [("v", 1.0), ("k", 0.0)]


def test_ties_keep_the_keyword_order_and_repeats_count_once() -> None:
    assert [i for i, _ in fuse([("a", 1), ("b", 1)], [("b", 1), ("a", 1)])] == ["a", "b"]
    assert fuse([("a", 1.0), ("a", 0.5)], []) == fuse([("a", 1.0)], [])


def test_empty_lists_and_bad_weights() -> None:
    assert fuse([], []) == []
    with pytest.raises(ValueError, match="weights"):
        fuse([("a", 1.0)], [], keyword_weight=0.0, vector_weight=0.0)
    with pytest.raises(ValueError, match="weights"):
        fuse([("a", 1.0)], [], keyword_weight=-1.0)


# --- chunk_text -------------------------------------------------------------------------


def test_short_text_is_one_chunk_and_empty_text_none() -> None:
    assert chunk_text("  Hello, world.  ") == ["Hello, world."]
    assert chunk_text("") == []
    assert chunk_text(" \n\t ") == []


def test_windows_overlap_by_the_given_tokens() -> None:
    text = " ".join(f"w{n:03d}" for n in range(100))  # "w000": one word of two tokens
    words = text.split()
    chunks = chunk_text(text, max_tokens=20, overlap_tokens=10)
    assert chunks[0].split() == words[:10]
    assert chunks[1].split() == words[5:15]
    assert chunks[-1].split()[-1] == words[-1]
    assert all(count_tokens(chunk) <= 20 for chunk in chunks)


def test_a_window_ends_between_words() -> None:
    text = "alpha " + "internationalisation " * 30
    for chunk in chunk_text(text, max_tokens=7, overlap_tokens=2):
        assert all(word in ("alpha", "internationalisation") for word in chunk.split())


def test_openai_defaults_and_bad_numbers() -> None:
    text = "word " * 2000
    chunks = chunk_text(text)
    assert [count_tokens(c) for c in chunks[:2]] == [800, 800]
    assert len(chunks) == 4  # starts at 0, 400, 800, 1200; the last reaches the end
    with pytest.raises(ValueError, match="max_tokens"):
        chunk_text(text, max_tokens=0)
    with pytest.raises(ValueError, match="overlap"):
        chunk_text(text, max_tokens=10, overlap_tokens=10)


def test_token_estimate() -> None:
    assert count_tokens("The cat sat.") == 4
    assert count_tokens("internationalisation") == 3  # 8 + 8 + 4 letters
    assert count_tokens("1234567") == 3
    assert count_tokens("東京都") == 3


@given(
    st.lists(st.sampled_from([" ", "\n", ". ", ", ", " 東京 ", " é"]), max_size=120),
    st.integers(4, 40),  # every word fits in a window: at most 3 tokens ("éw100")
    st.data(),
)
def test_chunks_cover_every_word_in_order(
    separators: list[str], max_tokens: int, data: st.DataObject
) -> None:
    # Words w0, w1, ... (unique, so each chunk's place is known) between varied separators.
    text = "".join(f"w{n}{sep}" for n, sep in enumerate(separators))
    overlap = data.draw(st.integers(0, max_tokens - 1))
    chunks = chunk_text(text, max_tokens, overlap)
    assert all(count_tokens(chunk) <= max_tokens for chunk in chunks)
    assert all(chunk == chunk.strip() and chunk in text for chunk in chunks)
    covered = -1
    first_before = -1
    for chunk in chunks:
        numbers = [int(word) for word in re.findall(r"w(\d+)", chunk)]
        if not numbers:
            continue
        assert numbers == list(range(numbers[0], numbers[-1] + 1))  # contiguous
        assert numbers[0] >= first_before  # never back before the previous chunk
        assert numbers[0] <= covered + 1  # no word skipped
        first_before, covered = numbers[0], max(covered, numbers[-1])
    assert covered == len(separators) - 1


# --- fts5_query -------------------------------------------------------------------------


def test_fts5_query_quotes_every_word_so_its_syntax_is_text() -> None:
    assert (
        fts5_query('Error E1042: "NEAR" AND -x') == '"error" OR "e1042" OR "near" OR "and" OR "x"'
    )
    assert fts5_query(" ,.! ") == ""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize = 'porter unicode61')")
    db.executemany("INSERT INTO t VALUES (?)", [("the hubs are running",), ("unrelated",)])
    found = db.execute("SELECT body FROM t WHERE t MATCH ?", (fts5_query("hub run OR NOT"),))
    assert found.fetchall() == [("the hubs are running",)]
