"""The embedded embeddings provider: the process's default embedder
(retrieval/embedder.py, all-MiniLM-L6-v2 on onnxruntime) served at /v1/embeddings.

It shares the one embedder that vector stores use, so the model is loaded once per
process and /v1/embeddings returns exactly the vectors a store keeps. It computes no
chat completions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from convostack.providers.base import JSONDict, ModelInfo, UnsupportedByProvider
from convostack.providers.settings import EmbeddedEmbeddingsSettings
from convostack.retrieval.embedder import MAX_TOKENS, default_embedder


def texts_of(value: Any, max_inputs: int) -> list[str]:
    """The texts of an embeddings request's `input`: a string or a list of strings.
    Token arrays are refused: they are another tokenizer's ids."""
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise UnsupportedByProvider(
            "The embedded embedding model takes 'input' as a string or a list of strings "
            "(token arrays are not supported).",
            code="invalid_value",
            param="input",
        )
    if not texts:
        raise UnsupportedByProvider(
            "'input' is empty: give at least one text.", code="invalid_value", param="input"
        )
    if len(texts) > max_inputs:
        raise UnsupportedByProvider(
            f"'input' holds {len(texts)} texts; at most {max_inputs} may be embedded at once.",
            code="invalid_value",
            param="input",
        )
    for n, text in enumerate(texts):
        if not text:
            raise UnsupportedByProvider(
                f"input[{n}] is an empty string: every text must have content.",
                code="invalid_value",
                param="input",
            )
    return texts


class EmbeddedEmbeddingsProvider:
    def __init__(self, settings: EmbeddedEmbeddingsSettings):
        self.id = settings.id
        self.settings = settings
        self.embedder = default_embedder()

    async def start(self) -> None:
        """Nothing: the model loads on the first embedding."""

    async def close(self) -> None:
        """Nothing: the embedder belongs to the process, and vector stores use it too."""

    async def list_models(self) -> list[ModelInfo]:
        return [
            ModelInfo(
                id=self.embedder.model,
                owned_by="convostack",
                context_length=MAX_TOKENS,
                kind="embedding",
            )
        ]

    async def chat(self, request: JSONDict) -> JSONDict:
        raise self._not_a_chat_model()

    async def chat_stream(self, request: JSONDict) -> AsyncIterator[JSONDict]:
        raise self._not_a_chat_model()
        yield {}  # never reached: it makes this an async generator, as callers expect

    def _not_a_chat_model(self) -> UnsupportedByProvider:
        return UnsupportedByProvider(
            f"'{self.embedder.model}' is an embedding model: use it with /v1/embeddings.",
            code="unsupported_model",
            param="model",
        )

    async def embeddings(self, request: JSONDict) -> JSONDict:
        texts = texts_of(request.get("input"), self.settings.max_inputs)
        dimensions = request.get("dimensions")
        if dimensions is not None and dimensions != self.embedder.dimension:
            raise UnsupportedByProvider(
                f"'{self.embedder.model}' computes {self.embedder.dimension} dimensions "
                "only; leave 'dimensions' out or set it to that.",
                code="invalid_value",
                param="dimensions",
            )
        vectors, tokens = await self.embedder.embed_counted(texts)
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": n, "embedding": row}
                for n, row in enumerate(vectors.tolist())
            ],
            "model": self.embedder.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
