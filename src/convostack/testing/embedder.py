"""A deterministic embedder for tests only (setting `embedder: testing-hash`): each word
is hashed into one of DIMENSION buckets, so texts sharing words are near. It needs no
model file and gives the same vectors in every process, which the replica tests need;
it is never a default."""

from __future__ import annotations

import hashlib
import re

import numpy

DIMENSION = 256
_WORDS = re.compile(r"\w+")


class HashEmbedder:
    model = "testing-hash"
    dimension = DIMENSION

    async def embed(self, texts: list[str]) -> numpy.ndarray:
        out = numpy.zeros((len(texts), DIMENSION), dtype=numpy.float32)
        for row, text in enumerate(texts):
            for word in _WORDS.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % DIMENSION] += 1.0
        norms = numpy.linalg.norm(out, axis=1, keepdims=True)
        return out / numpy.where(norms == 0, 1.0, norms)
