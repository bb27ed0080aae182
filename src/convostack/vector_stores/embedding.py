"""Which embedder vector stores use, chosen by name (setting `embedder`), created on first
use. `default` is the offline embedder of convostack.retrieval; `testing-hash` is a test
double (convostack.testing.embedder) that tests select explicitly, never a default."""

from __future__ import annotations

import importlib

from convostack.retrieval.embedder import Embedder

# name -> "module:factory"; a factory takes no arguments and returns an Embedder.
EMBEDDERS = {
    "default": "convostack.retrieval.embedder:default_embedder",
    "testing-hash": "convostack.testing.embedder:HashEmbedder",
}


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
