"""The inference provider protocol: what the services may ask of a model backend.

Providers speak the OpenAI Chat Completions wire format as plain JSON-ready dicts: a
request is a chat.completions body (with the provider's own model id in `model`), a
result is a `chat.completion` dict, a stream yields `chat.completion.chunk` dicts. Dicts,
not pydantic models, because the same JSON goes to an upstream or comes back from one
unchanged, and building models for every chunk of every stream would be pure overhead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from convostack.errors import APIError

JSONDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model a provider serves, under the provider's own id for it."""

    id: str
    owned_by: str
    created: int = 0
    context_length: int | None = None
    kind: str = "llm"  # "llm" or "embedding"


class ProviderError(APIError):
    """A provider failed; the message names the provider. Status defaults to 502."""

    status = 502
    type = "server_error"

    def headers(self) -> dict[str, str]:
        # The provider client has already retried within its bounds; the openai client
        # would otherwise retry every 5xx twice more, multiplying the upstream calls.
        return {"x-should-retry": "false"}


class ProviderTimeout(ProviderError):
    status = 504


class UnsupportedByProvider(APIError):
    status = 400
    type = "invalid_request_error"


class InferenceProvider(Protocol):
    """One backend. `id` names it in configuration, logs and error messages."""

    id: str

    async def start(self) -> None:
        """Open sessions; must not load a model (that happens on first use)."""

    async def close(self) -> None: ...

    async def list_models(self) -> list[ModelInfo]: ...

    async def chat(self, request: JSONDict) -> JSONDict:
        """A non-streaming chat completion: returns a `chat.completion` dict."""
        ...

    def chat_stream(self, request: JSONDict) -> AsyncIterator[JSONDict]:
        """A streaming chat completion: yields `chat.completion.chunk` dicts.

        The request carries `stream: true` and `stream_options.include_usage: true`, so
        the last chunk holds `usage`. Closing the iterator early cancels the generation.
        """
        ...

    async def embeddings(self, request: JSONDict) -> JSONDict:
        """An `embeddings` list dict with float arrays; raises UnsupportedByProvider."""
        ...


async def health_check(provider: InferenceProvider) -> None:
    """Raises unless `provider` answers: its own `check_health()` if it has one (an
    optional method), else listing its models, the cheapest call every provider has."""
    check = getattr(provider, "check_health", None)
    if check is not None:
        await check()
    else:
        await provider.list_models()


class ProviderWrapper:
    """A provider around another (to record, or to measure, its model calls): start,
    close, the model list and the health check pass through to `inner`."""

    def __init__(self, inner: InferenceProvider):
        self.inner = inner
        self.id = inner.id

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def list_models(self) -> list[ModelInfo]:
        return await self.inner.list_models()

    async def check_health(self) -> None:
        await health_check(self.inner)
