"""Counting a chat request's prompt tokens with the provider's own tokenizer, where it
has one: `POST /v1/responses/input_tokens` and the compaction threshold use it. A provider
that cannot count answers None and the caller estimates (`responses/context.py`)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from convostack.providers.base import InferenceProvider, JSONDict


@runtime_checkable
class TokenCounter(Protocol):
    async def count_tokens(self, request: JSONDict) -> int | None:
        """The prompt tokens of a chat request as this provider's model sees them."""
        ...


async def count_tokens(provider: InferenceProvider, request: JSONDict) -> int | None:
    if isinstance(provider, TokenCounter):
        return await provider.count_tokens(request)
    return None
