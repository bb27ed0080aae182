"""The store and the providers, measured: latency histograms, error counts, token counts
(metrics) and a span per call (traces), around the real thing.

Spans here are started, not made current: a store or model call has no children, and
a span made current inside an async generator (a stream) would be detached in another
context than it was attached in.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from convostack.errors import APIError
from convostack.observability.telemetry import Telemetry
from convostack.providers.base import InferenceProvider, JSONDict, ProviderWrapper

if TYPE_CHECKING:
    from opentelemetry.trace import Span

# Text attached to a span at most (characters), when trace_content is on.
MAX_CONTENT_CHARS = 16_384


class InstrumentedStore:
    """Any store, each of its coroutine methods timed (and traced) as `store <name>`."""

    def __init__(self, inner: Any, telemetry: Telemetry, system: str):
        self._inner = inner
        self._telemetry = telemetry
        self._system = system

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(attr):
            return attr
        measured = self._measure(name, attr)
        self.__dict__[name] = measured  # built once per method, then found directly
        return measured

    def _measure(
        self, name: str, method: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        metrics, tracing = self._telemetry.metrics, self._telemetry.tracing
        key = (name,)
        if tracing is None and metrics is not None:
            store_call = metrics.store_call

            async def timed(*args: Any, **kwargs: Any) -> Any:
                # Metrics alone: as little as can time a call (it is on every request).
                started = time.perf_counter()
                try:
                    return await method(*args, **kwargs)
                finally:
                    store_call(key, time.perf_counter() - started)

            return timed
        attributes = {"db.system": self._system, "db.operation.name": name}

        async def traced(*args: Any, **kwargs: Any) -> Any:
            span = (
                tracing.tracer.start_span(f"store {name}", attributes=attributes)
                if tracing
                else None
            )
            started = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            except Exception as exc:
                if span is not None:
                    _failed(span, exc)
                raise
            finally:
                if metrics is not None:
                    metrics.store_call(key, time.perf_counter() - started)
                if span is not None:
                    span.end()

        return traced


class _ModelCall:
    """One model call's measurements, from its start to its end (or failure)."""

    def __init__(self, owner: InstrumentedProvider, endpoint: str, request: JSONDict):
        self._owner = owner
        self._endpoint = endpoint
        self._model = str(request.get("model", ""))
        self._started = time.perf_counter()
        self._span: Span | None = None
        tracing = owner.telemetry.tracing
        if tracing is not None:
            operation = "embeddings" if endpoint == "embeddings" else "chat"
            self._span = tracing.tracer.start_span(
                f"{operation} {self._model}",
                attributes={
                    "gen_ai.operation.name": operation,
                    "gen_ai.provider.name": owner.id,
                    "gen_ai.request.model": self._model,
                    "convostack.endpoint": endpoint,
                },
            )
            if tracing.content and "messages" in request:
                self._span.set_attribute("gen_ai.input.messages", _text(request["messages"]))

    def ended(self, usage: JSONDict | None, output: Any = None) -> None:
        metrics, span = self._owner.telemetry.metrics, self._span
        elapsed = time.perf_counter() - self._started
        input_tokens = int((usage or {}).get("prompt_tokens") or 0)
        output_tokens = int((usage or {}).get("completion_tokens") or 0)
        if metrics is not None:
            metrics.model_call(self._owner.id, self._endpoint, elapsed)
            metrics.tokens(self._model, input_tokens, output_tokens)
        if span is not None:
            span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
            tracing = self._owner.telemetry.tracing
            if output is not None and tracing is not None and tracing.content:
                span.set_attribute("gen_ai.output.messages", _text(output))
            span.end()

    def failed(self, exc: BaseException) -> None:
        metrics = self._owner.telemetry.metrics
        if metrics is not None:
            status = str(exc.status) if isinstance(exc, APIError) else "error"
            metrics.model_error(self._owner.id, self._endpoint, status)
            metrics.model_call(self._owner.id, self._endpoint, time.perf_counter() - self._started)
        if self._span is not None:
            _failed(self._span, exc)
            self._span.end()


class InstrumentedProvider(ProviderWrapper):
    """A provider whose model calls are measured; everything else passes through."""

    def __init__(self, inner: InferenceProvider, telemetry: Telemetry):
        super().__init__(inner)
        self.telemetry = telemetry

    async def _unary(self, endpoint: str, request: JSONDict) -> JSONDict:
        call = _ModelCall(self, endpoint, request)
        method = self.inner.chat if endpoint == "chat" else self.inner.embeddings
        try:
            result = await method(request)
        except asyncio.CancelledError:  # the caller's doing, not the upstream's failure
            call.ended(None)
            raise
        except Exception as exc:
            call.failed(exc)
            raise
        choices = result.get("choices")
        call.ended(result.get("usage"), [c.get("message") for c in choices] if choices else None)
        return result

    async def chat(self, request: JSONDict) -> JSONDict:
        return await self._unary("chat", request)

    async def embeddings(self, request: JSONDict) -> JSONDict:
        return await self._unary("embeddings", request)

    async def chat_stream(self, request: JSONDict) -> AsyncIterator[JSONDict]:
        call = _ModelCall(self, "chat_stream", request)
        usage: JSONDict | None = None
        text: list[str] = []
        content = self.telemetry.tracing is not None and self.telemetry.tracing.content
        try:
            async for chunk in self.inner.chat_stream(request):
                usage = chunk.get("usage") or usage
                if content:
                    for choice in chunk.get("choices") or ():
                        text.append(str((choice.get("delta") or {}).get("content") or ""))
                yield chunk
        except (GeneratorExit, asyncio.CancelledError):
            call.ended(usage)  # closed early by its consumer: not the upstream's failure
            raise
        except Exception as exc:
            call.failed(exc)
            raise
        call.ended(usage, "".join(text) if content else None)


def _failed(span: Span, exc: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def _text(value: Any) -> str:
    return orjson.dumps(value).decode()[:MAX_CONTENT_CHARS]
