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
# The memory kept for conversations' histories between turns (responses/history_cache.py).
DEFAULT_HISTORY_CACHE_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_TOOLS = 128
DEFAULT_MAX_OUTPUT_TOKENS = 131_072
DEFAULT_MAX_CHAT_CHOICES = 8
# A request's input: 2,000 items take about 20 ms to validate (done in slices of a few
# ms, so other requests go on meanwhile); 100,000 took seconds and hundreds of MiB.
DEFAULT_MAX_INPUT_ITEMS = 2_000
# An item's image or file data, base64 or URL: a 12 MB image in base64.
DEFAULT_MAX_ITEM_DATA_BYTES = 16 * 2**20
# Stored items one request may copy through item references: as much as the default
# body limit, so a 24 KB request of references cannot ask for gigabytes of copies.
DEFAULT_MAX_REFERENCE_BYTES = 32 * 2**20

# Binary payloads (base64 images and files, or their URLs): counted as data, not text.
_DATA = frozenset({"image_url", "file_data", "file_url"})
# Keys counted as neither: short fields the item validator already bounds.
_NOT_TEXT = _DATA | frozenset({"type", "role", "id", "status", "detail"})


@dataclass(frozen=True, slots=True)
class Limits:
    max_item_text_chars: int = DEFAULT_MAX_ITEM_TEXT_CHARS
    max_items_per_conversation: int = DEFAULT_MAX_ITEMS_PER_CONVERSATION
    max_tools: int = DEFAULT_MAX_TOOLS
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS
    max_chat_choices: int = DEFAULT_MAX_CHAT_CHOICES
    max_input_items: int = DEFAULT_MAX_INPUT_ITEMS
    max_item_data_bytes: int = DEFAULT_MAX_ITEM_DATA_BYTES
    max_reference_bytes: int = DEFAULT_MAX_REFERENCE_BYTES

    def check_item_text(self, item: dict[str, Any], param: str) -> None:
        """An item's text (its strings, but binary payloads and bounded fields) and its
        data (image and file payloads or URLs) within their limits."""
        sizes = [0, 0]
        _count(item, sizes, data=False)
        text, data = sizes
        if text > self.max_item_text_chars:
            raise InvalidRequestError(
                f"Invalid '{param}': the item holds {text} characters of text, more than "
                f"the limit of {self.max_item_text_chars} per item (setting "
                "max_item_text_chars). Split the text over several items.",
                code="string_above_max_length",
                param=param,
            )
        if data > self.max_item_data_bytes:
            raise InvalidRequestError(
                f"Invalid '{param}': the item holds {data} bytes of image or file data "
                f"(base64 or URLs), more than the limit of {self.max_item_data_bytes} per "
                "item (setting max_item_data_bytes). Send smaller files, or split them "
                "over several items.",
                code="string_above_max_length",
                param=param,
            )

    def check_input_count(self, count: int, param: str) -> None:
        if count > self.max_input_items:
            raise InvalidRequestError(
                f"Invalid '{param}': array too long. Expected an array with maximum length "
                f"{self.max_input_items} (setting max_input_items), but got an array with "
                f"length {count} instead.",
                code="array_above_max_length",
                param=param,
            )

    def check_reference_bytes(self, size: int, param: str) -> None:
        if size > self.max_reference_bytes:
            raise InvalidRequestError(
                f"Invalid '{param}': its item references copy {size} bytes of stored items, "
                f"more than the limit of {self.max_reference_bytes} per request (setting "
                "max_reference_bytes). Reference fewer or smaller items.",
                code="input_too_large",
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


def _count(value: Any, sizes: list[int], *, data: bool) -> None:
    """Adds a JSON value's string lengths to sizes: [text, data]; `data` says the value
    is under a data key. Keys counted as neither are skipped."""
    if isinstance(value, str):
        sizes[data] += len(value)
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key in _DATA:
                _count(inner, sizes, data=True)
            elif key not in _NOT_TEXT:
                _count(inner, sizes, data=data)
    elif isinstance(value, list):
        for inner in value:
            _count(inner, sizes, data=data)


class RateLimiter:
    """A token bucket per principal: `burst` tokens at once, refilled at `per_minute`
    (default burst: a tenth of the per-minute rate, six seconds' worth). A request costs
    one token, plus, with `bytes_per_token`, one per that many bytes of its body: a
    32 MiB body is not the same work as a 32-byte one."""

    def __init__(
        self,
        per_minute: int,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        bytes_per_token: int | None = None,
    ):
        self.per_minute = per_minute
        self.burst = burst or max(1, math.ceil(per_minute / 10))
        self.bytes_per_token = bytes_per_token
        self._rate = per_minute / 60.0
        self._clock = clock
        # principal -> [tokens, when counted]; as many entries as there are principals.
        self._buckets: dict[str, list[float]] = {}

    def cost(self, body_bytes: int) -> float:
        """Tokens a request with a body of this size costs."""
        if self.bytes_per_token is None:
            return 1.0
        return 1.0 + body_bytes / self.bytes_per_token

    def take(self, principal: str, cost: float = 1.0) -> float:
        """0 when the request may go now (its cost taken); else the seconds until it
        may. A cost above the burst needs a full bucket, and takes all of it."""
        tokens = self._refilled(principal)
        needed = min(cost, float(self.burst))
        bucket = self._buckets[principal]
        if tokens >= needed:
            bucket[0] = tokens - needed
            return 0.0
        bucket[0] = tokens
        return (needed - tokens) / self._rate

    def charge(self, principal: str, cost: float) -> None:
        """Takes tokens for work already done (a body whose size was not announced),
        down to a debt of one burst: the principal's next requests wait for it."""
        tokens = self._refilled(principal)
        self._buckets[principal][0] = max(tokens - cost, -float(self.burst))

    def _refilled(self, principal: str) -> float:
        now = self._clock()
        bucket = self._buckets.get(principal)
        if bucket is None:
            bucket = self._buckets[principal] = [float(self.burst), now]
        tokens = min(float(self.burst), bucket[0] + (now - bucket[1]) * self._rate)
        bucket[1] = now
        return tokens
