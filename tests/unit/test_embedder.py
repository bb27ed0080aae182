"""The default embedder (all-MiniLM-L6-v2 on onnxruntime, from its PyPI packages) and the
provider-backed embedder, on the real model: it loads in well under a second."""

from __future__ import annotations

from pathlib import Path

import numpy
import pytest

from convostack.providers.base import JSONDict, ModelInfo, ProviderError
from convostack.providers.router import ModelNotFound, ModelRouter
from convostack.retrieval import embedder as embedder_module
from convostack.retrieval.embedder import (
    DIMENSION,
    MAX_TOKENS,
    MODEL_ID,
    EmbedderUnavailable,
    OnnxEmbedder,
    ProviderEmbedder,
    default_embedder,
)

TEXTS = [
    "The cat sat on the mat.",
    "A kitten is sitting on a rug.",
    "Quarterly revenue rose by eight percent.",
    "How do I reset my password?",
]


async def test_shape_dtype_and_unit_length() -> None:
    vectors = await default_embedder().embed(TEXTS)
    assert vectors.shape == (len(TEXTS), DIMENSION)
    assert vectors.dtype == numpy.float32
    numpy.testing.assert_allclose(numpy.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


async def test_no_texts_is_an_empty_matrix() -> None:
    assert (await default_embedder().embed([])).shape == (0, DIMENSION)


async def test_deterministic_and_independent_of_the_batch() -> None:
    embedder = default_embedder()
    alone = await embedder.embed([TEXTS[0]])
    together = await embedder.embed(TEXTS)
    again = await embedder.embed(TEXTS)
    numpy.testing.assert_array_equal(together, again)
    # Padded beside longer texts, the first text's vector is the same (up to rounding).
    numpy.testing.assert_allclose(alone[0], together[0], atol=1e-5)


async def test_similar_texts_are_closer_than_unrelated_ones() -> None:
    vectors = await default_embedder().embed(TEXTS)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > 0.5
    assert similarity[0, 1] > similarity[0, 2] + 0.3
    assert similarity[0, 1] > similarity[0, 3] + 0.3


async def test_batches_of_any_size_give_the_same_vectors() -> None:
    texts = [f"note {n}: {TEXTS[n % len(TEXTS)]}" for n in range(37)]
    small = OnnxEmbedder(batch_size=5)
    numpy.testing.assert_allclose(
        await small.embed(texts), await default_embedder().embed(texts), atol=1e-5
    )


def test_one_default_embedder_per_process() -> None:
    assert default_embedder() is default_embedder()
    assert default_embedder().model == MODEL_ID == "all-minilm-l6-v2"


async def test_long_text_is_cut_at_the_models_length() -> None:
    embedder = default_embedder()
    long = "word " * 1000
    (count,) = embedder.count_tokens([long])
    assert count == 1002  # uncut, [CLS] and [SEP] included
    _, used = await embedder.embed_counted([long, "two words"])
    assert used == MAX_TOKENS + 4


def test_a_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedder_module, "MODEL_PACKAGE", "no-such-package-here")
    with pytest.raises(EmbedderUnavailable, match="pip install no-such-package-here"):
        embedder_module.packaged_file("no-such-package-here", "/model.onnx", "0" * 64)


def test_a_file_of_the_wrong_digest_is_refused() -> None:
    with pytest.raises(EmbedderUnavailable, match="not the expected file"):
        embedder_module.packaged_file(
            embedder_module.MODEL_PACKAGE, embedder_module.MODEL_FILE_SUFFIX, "0" * 64
        )


def test_an_unloadable_model_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(EmbedderUnavailable, match="could not load"):
        OnnxEmbedder(model_path=bad).load()


# --- a provider's embeddings ------------------------------------------------------------


class ScaledEmbeddings:
    """A provider whose vectors are not normalised and come back out of order."""

    id = "scaled"

    def __init__(self, size: int = 3):
        self.size = size
        self.calls: list[JSONDict] = []

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(id="scaled-embed", owned_by="test", kind="embedding")]

    async def chat(self, request: JSONDict) -> JSONDict:
        raise NotImplementedError

    def chat_stream(self, request: JSONDict) -> object:
        raise NotImplementedError

    async def embeddings(self, request: JSONDict) -> JSONDict:
        self.calls.append(request)
        data = [
            {"object": "embedding", "index": n, "embedding": [float(len(t))] * self.size}
            for n, t in enumerate(request["input"])
        ]
        return {"object": "list", "data": list(reversed(data)), "model": request["model"]}


async def _router(provider: ScaledEmbeddings) -> ModelRouter:
    router = ModelRouter([provider])  # type: ignore[list-item]
    await router.start()
    return router


async def test_provider_embedder_learns_the_dimension_and_normalises() -> None:
    provider = ScaledEmbeddings(size=4)
    embedder = await ProviderEmbedder.connect(await _router(provider), "scaled-embed")
    assert (embedder.model, embedder.dimension) == ("scaled-embed", 4)
    embedder.batch_size = 2
    vectors = await embedder.embed(["a", "bb", "ccc"])
    assert vectors.shape == (3, 4)
    numpy.testing.assert_allclose(vectors, 0.5)
    assert [call["input"] for call in provider.calls[1:]] == [["a", "bb"], ["ccc"]]
    assert provider.calls[0]["encoding_format"] == "float"


async def test_provider_embedder_refuses_another_dimension() -> None:
    embedder = ProviderEmbedder(await _router(ScaledEmbeddings(size=3)), "scaled-embed", 8)
    with pytest.raises(ProviderError, match="3 dimensions; 8 were expected"):
        await embedder.embed(["a"])


async def test_provider_embedder_of_an_unknown_model_is_a_404() -> None:
    with pytest.raises(ModelNotFound):
        await ProviderEmbedder.connect(await _router(ScaledEmbeddings()), "nope")
