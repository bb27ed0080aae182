"""Which embedder vector stores use, chosen by name (setting `embedder`), created on first
use. `default` is the offline embedder of convostack.retrieval; `testing-hash` is a test
double (convostack.testing.embedder) that tests select explicitly, never a default."""

from __future__ import annotations

import importlib
from typing import Protocol

import numpy

# name -> "module:factory"; a factory takes no arguments and returns an Embedder.
EMBEDDERS = {
    "default": "convostack.retrieval.embedder:default_embedder",
    "testing-hash": "convostack.testing.embedder:HashEmbedder",
}


class Embedder(Protocol):
    """convostack.retrieval.embedder.Embedder: float32 [n, dimension], rows of length 1."""

    model: str
    dimension: int

    async def embed(self, texts: list[str]) -> numpy.ndarray: ...


class EmbedderSource:
    def __init__(self, name: str):
        self._name = name
        self._embedder: Embedder | None = None

    def get(self) -> Embedder:
        if self._embedder is None:
            module, _, factory = EMBEDDERS[self._name].partition(":")
            self._embedder = getattr(importlib.import_module(module), factory)()
        return self._embedder

    def model(self) -> tuple[str, int]:
        embedder = self.get()
        return embedder.model, embedder.dimension
