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


async def count_tokens(
    provider: InferenceProvider, request: JSONDict, cheap_only: bool = False
) -> int | None:
    """The provider's count; with `cheap_only`, None where counting costs a model's
    evaluation of the prompt (the embedded model), for callers that count often."""
    if not isinstance(provider, TokenCounter):
        return None
    if cheap_only and not getattr(provider, "counts_cheaply", True):
        return None
    return await provider.count_tokens(request)
