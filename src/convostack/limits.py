"""Limits on what one request may ask of the server, and the optional rate limit.

Every limit is a setting (config file, `CONVOSTACK_<NAME>` or defaults below) and every
breach is a 400 (413 for the body size, 429 for the rate) whose message names the limit
and the setting that raises it. The limits here come on top of OpenAI's own fixed ones
(20 items per call, metadata of 16 keys of 64/512 characters), which stay fixed because
clients rely on them.

The rate limit is a token bucket per principal, in this process's memory: with several
replicas each applies it on its own, so a principal may get up to replicas x the rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from convostack.errors import InvalidRequestError

DEFAULT_MAX_ITEM_TEXT_CHARS = 1_048_576
DEFAULT_MAX_ITEMS_PER_CONVERSATION = 10_000
DEFAULT_MAX_TOOLS = 128
DEFAULT_MAX_OUTPUT_TOKENS = 131_072
DEFAULT_MAX_CHAT_CHOICES = 8

# Keys not counted as text: binary payloads (base64 images and files), bounded by the
# request body size alone, and short fields the item validator already bounds.
_NOT_TEXT = frozenset({"image_url", "file_data", "type", "role", "id", "status", "detail"})


@dataclass(frozen=True, slots=True)
class Limits:
    max_item_text_chars: int = DEFAULT_MAX_ITEM_TEXT_CHARS
    max_items_per_conversation: int = DEFAULT_MAX_ITEMS_PER_CONVERSATION
    max_tools: int = DEFAULT_MAX_TOOLS
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS
    max_chat_choices: int = DEFAULT_MAX_CHAT_CHOICES

    def check_item_text(self, item: dict[str, Any], param: str) -> None:
        """An item's text (its strings, but binary payloads and bounded fields) within the
        limit."""
        size = text_size(item)
        if size > self.max_item_text_chars:
            raise InvalidRequestError(
                f"Invalid '{param}': the item holds {size} characters of text, more than "
                f"the limit of {self.max_item_text_chars} per item (setting "
                "max_item_text_chars). Split the text over several items.",
                code="string_above_max_length",
                param=param,
            )

    def check_text(self, text: str | None, param: str) -> None:
        if text is not None and len(text) > self.max_item_text_chars:
            raise InvalidRequestError(
                f"Invalid '{param}': string too long. Expected a string with maximum length "
                f"{self.max_item_text_chars} (setting max_item_text_chars), but got a string "
                f"with length {len(text)} instead.",
                code="string_above_max_length",
                param=param,
            )

    def check_conversation_size(
        self, conversation_id: str, existing: int, adding: int, param: str
    ) -> None:
        if existing + adding > self.max_items_per_conversation:
            raise self.conversation_too_long(conversation_id, existing, adding, param)

    def conversation_too_long(
        self, conversation_id: str, existing: int, adding: int, param: str
    ) -> InvalidRequestError:
        return InvalidRequestError(
            f"Conversation '{conversation_id}' holds {existing} items; adding {adding} "
            f"would pass the limit of {self.max_items_per_conversation} items per "
            "conversation (setting max_items_per_conversation). Start a new "
            "conversation, or delete items from this one.",
            code="conversation_too_long",
            param=param,
        )

    def check_tool_count(self, count: int) -> None:
        if count > self.max_tools:
            raise InvalidRequestError(
                f"Invalid 'tools': array too long. Expected an array with maximum length "
                f"{self.max_tools} (setting max_tools), but got an array with length "
                f"{count} instead.",
                code="array_above_max_length",
                param="tools",
            )

    def check_max_output_tokens(self, value: int | None, param: str = "max_output_tokens") -> None:
        """`param`: the name the request gives it (Chat Completions: `max_tokens`)."""
        if value is not None and value > self.max_output_tokens:
            raise _above_max(param, self.max_output_tokens, "max_output_tokens", value)

    def check_choices(self, value: int | None) -> None:
        if value is not None and value > self.max_chat_choices:
            raise _above_max("n", self.max_chat_choices, "max_chat_choices", value)


def _above_max(param: str, limit: int, setting: str, value: int) -> InvalidRequestError:
    return InvalidRequestError(
        f"Invalid '{param}': integer above maximum value. Expected a value <= {limit} "
        f"(setting {setting}), but got {value} instead.",
        code="integer_above_max_value",
        param=param,
    )


def text_size(value: Any) -> int:
    """Characters in the strings of a JSON value, those under `_NOT_TEXT` keys left out."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(text_size(v) for k, v in value.items() if k not in _NOT_TEXT)
    if isinstance(value, list):
        return sum(text_size(v) for v in value)
    return 0


class RateLimiter:
    """A token bucket per principal: `burst` requests at once, refilled at `per_minute`
    (default burst: a tenth of the per-minute rate, six seconds' worth)."""

    def __init__(
        self, per_minute: int, burst: int | None = None, clock: Callable[[], float] = time.monotonic
    ):
        self.per_minute = per_minute
        self.burst = burst or max(1, math.ceil(per_minute / 10))
        self._rate = per_minute / 60.0
        self._clock = clock
        # principal -> [tokens, when counted]; as many entries as there are principals.
        self._buckets: dict[str, list[float]] = {}

    def take(self, principal: str) -> float:
        """0 when the request may go now; else the seconds until it may."""
        now = self._clock()
        bucket = self._buckets.get(principal)
        if bucket is None:
            bucket = self._buckets[principal] = [float(self.burst), now]
        tokens = min(float(self.burst), bucket[0] + (now - bucket[1]) * self._rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self._rate
