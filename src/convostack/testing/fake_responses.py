"""The fake upstream's Responses API: `POST /v1/responses`, non-streaming and streaming.

Only for benchmarks against peers (vLLM agentic-api, SGLang smg) that forward a turn to
their upstream's `/v1/responses` instead of calling chat completions; convostack itself
never calls it. Deterministic like the fake's chat completions: the reply text is
`echo: <text> [<n> items]`, where <text> is the text of the last user message and <n> the
number of input items received (a string input counts as one), so a benchmark can check
that the whole history went upstream. No tools, no faults: a plain text answer, with
the full event sequence when `stream` is true.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import orjson

JSONDict = dict[str, Any]

CREATED = 1_700_000_000
STREAM_PIECES = 4


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        ).strip()
    return ""


def input_items(body: JSONDict) -> list[Any]:
    raw = body.get("input")
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    return list(raw) if isinstance(raw, list) else []


def _last_user_text(items: list[Any]) -> str:
    for item in reversed(items):
        if isinstance(item, dict) and item.get("role") == "user":
            return _text(item.get("content"))
    return ""


def _words(items: list[Any]) -> int:
    return sum(len(_text(i.get("content")).split()) for i in items if isinstance(i, dict))


def _pieces(text: str, count: int) -> list[str]:
    size = max(1, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def response_for(body: JSONDict) -> JSONDict:
    """The completed Response the fake answers for a `/v1/responses` request body."""
    items = input_items(body)
    reply = f"echo: {_last_user_text(items)} [{len(items)} items]"
    tag = hashlib.sha256(orjson.dumps(body)).hexdigest()[:16]
    prompt, completion = _words(items), len(reply.split())
    message = {
        "id": f"msg_fake{tag}",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": reply, "annotations": [], "logprobs": []}],
    }
    return {
        "id": f"resp_fake{tag}",
        "object": "response",
        "created_at": CREATED,
        "status": "completed",
        "completed_at": CREATED,
        "model": body.get("model", ""),
        "output": [message],
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "metadata": {},
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "temperature": 1.0,
        "top_p": 1.0,
        "previous_response_id": None,
        "store": False,
        "text": {"format": {"type": "text"}},
        "truncation": "disabled",
        "usage": {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
        },
    }


def stream_events(response: JSONDict) -> Iterator[bytes]:
    """The SSE frames of a streamed turn that ends in `response`, `[DONE]` excluded."""
    message = response["output"][0]
    text = message["content"][0]["text"]
    in_progress = {**response, "status": "in_progress", "completed_at": None, "output": []}
    in_progress["usage"] = None
    empty_message = {**message, "status": "in_progress", "content": []}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    ids = {"item_id": message["id"], "output_index": 0}
    events: list[JSONDict] = [
        {"type": "response.created", "response": in_progress},
        {"type": "response.in_progress", "response": in_progress},
        {"type": "response.output_item.added", "output_index": 0, "item": empty_message},
        {"type": "response.content_part.added", **ids, "content_index": 0, "part": part},
    ]
    events += [
        {"type": "response.output_text.delta", **ids, "content_index": 0, "delta": piece,
         "logprobs": []}
        for piece in _pieces(text, STREAM_PIECES)
    ]  # fmt: skip
    events += [
        {"type": "response.output_text.done", **ids, "content_index": 0, "text": text,
         "logprobs": []},
        {"type": "response.content_part.done", **ids, "content_index": 0,
         "part": message["content"][0]},
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {"type": "response.completed", "response": response},
    ]  # fmt: skip
    for number, event in enumerate(events):
        event["sequence_number"] = number
        yield b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
