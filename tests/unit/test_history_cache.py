"""The history kept between turns (`responses/history_cache.py`): a conversion carried on
from any earlier point gives exactly the messages of a conversion from scratch, and the
cache stays within its budget."""

from __future__ import annotations

import random
from typing import Any

from convostack.responses.context import (
    approval_requests,
    chat_request,
    convert_history,
    to_messages,
)
from convostack.responses.history_cache import Entry, HistoryCache
from convostack.responses.models import ResponseCreate

Item = dict[str, Any]


def _item(rng: random.Random, n: int, requests: list[str]) -> Item:
    kind = rng.choice(
        ["user", "assistant", "call", "output", "reasoning", "mcp", "request", "answer",
         "compaction", "custom"]
    )  # fmt: skip
    if kind in ("user", "assistant"):
        return {"type": "message", "role": kind,
                "content": [{"type": "input_text" if kind == "user" else "output_text",
                             "text": f"{kind} {n}"}]}  # fmt: skip
    if kind == "call":
        return {"type": "function_call", "call_id": f"c{n}", "name": "f", "arguments": "{}"}
    if kind == "custom":
        return {"type": "custom_tool_call", "call_id": f"c{n}", "name": "g", "input": "x"}
    if kind == "output":
        return {"type": "function_call_output", "call_id": f"c{n - 1}", "output": f"out {n}"}
    if kind == "reasoning":
        return {"type": "reasoning", "content": [{"type": "reasoning_text", "text": f"t{n}"}]}
    if kind == "mcp":
        return {"type": "mcp_call", "id": f"m{n}", "name": "tool", "arguments": "{}",
                "output": f"mcp {n}"}  # fmt: skip
    if kind == "request":
        requests.append(f"r{n}")
        return {"type": "mcp_approval_request", "id": f"r{n}", "name": "tool",
                "arguments": "{}", "server_label": "s"}  # fmt: skip
    if kind == "answer":
        # an earlier request, or one that comes only later (or never)
        target = rng.choice([*requests, f"r{n + 1}", f"r{n + 2}"])
        return {"type": "mcp_approval_response", "approval_request_id": target,
                "approve": False, "reason": "no"}  # fmt: skip
    return {"type": "compaction", "encrypted_content": "x"}


def _items(seed: int, count: int) -> list[Item]:
    rng = random.Random(seed)
    requests: list[str] = []
    return [_item(rng, n, requests) for n in range(count)]


def test_a_conversion_carried_on_from_any_point_is_the_conversion_from_scratch() -> None:
    for seed in range(60):
        items = _items(seed, 24)
        expected = to_messages(items, approval_requests(items))
        for cut in range(len(items) + 1):
            prefix = convert_history(items[:cut])
            assert convert_history(items, prefix).finish() == expected, (seed, cut)
            # the prefix itself is left as it was, ready to be carried on again
            assert prefix.items == cut
            alone = to_messages(items[:cut], approval_requests(items[:cut]))
            assert prefix.copy().finish() == alone


def test_a_request_from_a_converted_history_is_the_request_from_scratch() -> None:
    body = ResponseCreate.model_validate({"model": "m", "input": "x", "instructions": "be brief"})
    for seed in range(60):
        items = _items(seed, 30)
        history, new_input = items[:24], items[24:]
        expected = chat_request(body, "m", history, new_input)
        for cut in (0, 5, 12, 23, 24):
            converted = convert_history(history, convert_history(history[:cut]))
            assert chat_request(body, "m", history, new_input, converted=converted) == expected
    # An approval answered in the history whose request comes only in the new input.
    answer = {"type": "mcp_approval_response", "approval_request_id": "r_late", "approve": False}
    request = {"type": "mcp_approval_request", "id": "r_late", "name": "t", "arguments": "{}"}
    history = [*_items(1, 5), answer]
    expected = chat_request(body, "m", history, [request])
    converted = convert_history(history)
    assert chat_request(body, "m", history, [request], converted=converted) == expected


def _entry(size: int) -> Entry:
    return Entry(next_seq=1, deleted=0, items=[], size=size)


def test_the_cache_keeps_the_most_recently_used_within_its_budget() -> None:
    cache = HistoryCache(max_bytes=100)
    cache.put("o", "a", _entry(40))
    cache.put("o", "b", _entry(40))
    assert cache.get("o", "a") is not None  # now the most recently used
    cache.put("o", "c", _entry(40))  # over budget: "b" goes
    assert cache.get("o", "b") is None
    assert cache.get("o", "a") is not None
    assert cache.get("o", "c") is not None
    assert (cache.bytes, len(cache)) == (80, 2)
    cache.put("o", "a", _entry(10))  # replacing an entry counts it once
    assert cache.bytes == 50
    cache.put("o", "huge", _entry(101))  # bigger than the whole budget: not kept
    assert cache.get("o", "huge") is None
    assert cache.bytes == 50
    cache.discard("o", "c")
    assert (cache.bytes, len(cache)) == (10, 1)
    assert cache.get("other-owner", "a") is None  # keyed by owner too


def test_a_zero_budget_keeps_nothing() -> None:
    cache = HistoryCache(max_bytes=0)
    cache.put("o", "a", _entry(1))
    assert cache.get("o", "a") is None
