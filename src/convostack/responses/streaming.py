"""Server-sent events for Responses: numbering, framing, and replay of a stored response."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import orjson

from convostack.providers.base import JSONDict
from convostack.responses.output import Event


def frame(event: Event, sequence_number: int) -> bytes:
    event["sequence_number"] = sequence_number
    return b"event: %s\ndata: %s\n\n" % (event["type"].encode(), orjson.dumps(event))


async def sse(events: AsyncIterator[Event], starting_after: int = -1) -> AsyncIterator[bytes]:
    """Frame events with a `sequence_number` that starts at 0 and grows by one."""
    number = 0
    async for event in events:
        if number > starting_after:
            yield frame(event, number)
        number += 1


def replay_events(response: JSONDict) -> Iterator[Event]:
    """The event sequence of a stored response, for `GET /responses/{id}?stream=true`."""
    snapshot = {**response, "status": "in_progress", "output": [], "usage": None}
    yield {"type": "response.created", "response": snapshot}
    yield {"type": "response.in_progress", "response": snapshot}
    for index, item in enumerate(response["output"]):
        started = {**item, "status": "in_progress"} if "status" in item else dict(item)
        if item["type"] in ("message", "reasoning"):
            started["content"] = []
        elif item["type"] in ("function_call", "mcp_call"):
            started["arguments"] = ""
        elif item["type"] == "mcp_list_tools":
            started["tools"] = []
        elif item["type"] == "custom_tool_call":
            started["input"] = ""
        yield {"type": "response.output_item.added", "output_index": index, "item": started}
        if item["type"] == "message":
            for part_index, part in enumerate(item["content"]):
                where = {"item_id": item["id"], "output_index": index, "content_index": part_index}
                empty = {**part, "text": ""} if part["type"] == "output_text" else part
                yield {"type": "response.content_part.added", **where, "part": empty}
                if part["type"] == "output_text":
                    yield {"type": "response.output_text.delta", **where, "delta": part["text"],
                           "logprobs": []}  # fmt: skip
                    yield {"type": "response.output_text.done", **where, "text": part["text"],
                           "logprobs": []}  # fmt: skip
                yield {"type": "response.content_part.done", **where, "part": part}
        elif item["type"] == "function_call":
            where = {"item_id": item["id"], "output_index": index}
            yield {"type": "response.function_call_arguments.delta", **where,
                   "delta": item["arguments"]}  # fmt: skip
            yield {"type": "response.function_call_arguments.done", **where,
                   "arguments": item["arguments"]}  # fmt: skip
        else:
            yield from _tool_item_events(index, item)
        yield {"type": "response.output_item.done", "output_index": index, "item": item}
    terminal = {"completed": "response.completed", "incomplete": "response.incomplete"}
    yield {"type": terminal.get(response["status"], "response.failed"), "response": response}


def _tool_item_events(index: int, item: JSONDict) -> Iterator[Event]:
    """A server-run tool item's own events, as the tool loop sent them."""
    where = {"item_id": item["id"], "output_index": index}
    if item["type"] == "mcp_list_tools":
        yield {"type": "response.mcp_list_tools.in_progress", **where}
        yield {"type": "response.mcp_list_tools.completed", **where}
    elif item["type"] == "mcp_call":
        yield {"type": "response.mcp_call.in_progress", **where}
        yield {"type": "response.mcp_call_arguments.delta", **where, "delta": item["arguments"]}
        yield {"type": "response.mcp_call_arguments.done", **where, "arguments": item["arguments"]}
        outcome = "failed" if item.get("status") == "failed" else "completed"
        yield {"type": f"response.mcp_call.{outcome}", **where}
    elif item["type"] == "custom_tool_call":
        yield {"type": "response.custom_tool_call_input.delta", **where, "delta": item["input"]}
        yield {"type": "response.custom_tool_call_input.done", **where, "input": item["input"]}
    elif item["type"] == "reasoning":
        for index, part in enumerate(item.get("content") or []):
            at = {**where, "content_index": index}
            yield {"type": "response.reasoning_text.delta", **at, "delta": part["text"]}
            yield {"type": "response.reasoning_text.done", **at, "text": part["text"]}


async def as_async(events: Iterator[Event]) -> AsyncIterator[Event]:
    for event in events:
        yield event
