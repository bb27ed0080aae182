"""Model output as Responses output items, and the events that announce them.

One builder serves both paths: it is fed Chat Completions deltas (each streamed chunk,
or a whole non-streamed message as one delta) and emits the Responses streaming events
in the order the `openai` stream helper requires: an item is `added` before any event
that names it, a message's `content_part.added` comes before its first text delta, and
every item is `done` before the terminal event. Item ids are fixed when the item is
added, so `added` and `done` always agree.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from convostack.ids import new_item_id
from convostack.providers.base import JSONDict

Event = JSONDict


def new_call_id() -> str:
    return f"call_{secrets.token_hex(12)}"


@dataclass(frozen=True, slots=True)
class CallShape:
    """What a call the model makes becomes: its output item and the events naming it.

    A client-side function call is announced and done at once; a call the server runs
    (`runs_on_server`) is `done` only after the loop has run it, with its result.
    """

    item: JSONDict  # the item's fields, `id` and `arguments` aside
    arguments_events: str | None  # e.g. "response.mcp_call_arguments" (.delta/.done)
    started_event: str | None = None  # sent right after the item is added
    running_event: str | None = None  # sent as the server starts running it
    completed_event: str | None = None
    failed_event: str | None = None
    runs_on_server: bool = False
    runner: Any = field(default=None, compare=False)  # what runs it (a TurnTools)
    for_caller: bool = False  # a call the caller runs: it gets a `call_id` and a `name`
    # A custom tool's call: the model's JSON arguments to the item's `input` (raises
    # when the input breaks the tool's grammar); its events are `<input_events>.delta/done`.
    input_of: Callable[[str], str] | None = field(default=None, compare=False)
    input_events: str | None = None
    # Fields the server keeps on the item until it has run the call (the model's name
    # and arguments for it) and the wire type does not have: never in an event.
    private: tuple[str, ...] = ()


FUNCTION_CALL = CallShape(
    {"type": "function_call", "status": "in_progress"},
    "response.function_call_arguments",
    for_caller=True,
)
ShapeOf = Callable[[str], CallShape | None]


@dataclass
class _Message:
    index: int
    item: JSONDict
    text: list[str] = field(default_factory=list)


@dataclass
class _Reasoning:
    """An engine's reasoning (vLLM's reasoning parsers: `reasoning_content` or
    `reasoning` beside `content`), kept as a `reasoning` item before the answer."""

    index: int
    item: JSONDict
    text: list[str] = field(default_factory=list)
    done: bool = False  # closed once the answer (or a call) begins


@dataclass
class _Call:
    index: int
    item: JSONDict
    shape: CallShape
    arguments: list[str] = field(default_factory=list)


class OutputBuilder:
    """Output items of one model call; `start` is the output index of its first item
    (after the items of earlier rounds of the tool loop), and `max_tool_calls` the calls
    it may still make: the ones past it are ignored, as OpenAI ignores them."""

    def __init__(
        self,
        max_tool_calls: int | None = None,
        start: int = 0,
        shape_of: ShapeOf | None = None,
        on_reasoning: Callable[[JSONDict], None] | None = None,
        cite: Callable[[str], list[JSONDict]] | None = None,
    ):
        self._on_reasoning = on_reasoning  # e.g. seals it, before it is `done`
        self._cite = cite  # the annotations of an answer's text (file citations)
        self._max_tool_calls = max_tool_calls
        self._start = start
        self._shape_of = shape_of
        self.ignored_calls = 0
        self.size = 0  # characters of text and arguments so far
        self._items: list[_Message | _Reasoning | _Call] = []
        self._message: _Message | None = None
        self._reasoning: _Reasoning | None = None
        self._calls: dict[int, _Call] = {}  # by the provider's tool call index
        self._dropped_calls: set[int] = set()
        self.finish_reason: str | None = None
        self.usage: JSONDict | None = None

    def feed(self, chunk: JSONDict) -> list[Event]:
        """Events for one chat chunk (or for a whole non-streamed choice)."""
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        events: list[Event] = []
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or choice.get("message") or {}
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(thought, str) and thought:
                events += self._thought(thought)
            text = delta.get("content")
            if text:
                events += self._text(text)
            for position, call in enumerate(delta.get("tool_calls") or []):
                events += self._call(call, call.get("index", position))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def _thought(self, text: str) -> list[Event]:
        events: list[Event] = []
        if self._reasoning is None:
            item = {"id": new_item_id("reasoning"), "type": "reasoning", "status": "in_progress",
                    "summary": [], "content": []}  # fmt: skip
            self._reasoning = _Reasoning(self._next_index(), item)
            self._items.append(self._reasoning)
            events.append(item_added(self._reasoning.index, item))
        self._reasoning.text.append(text)
        self.size += len(text)
        events.append(
            {"type": "response.reasoning_text.delta", "item_id": self._reasoning.item["id"],
             "output_index": self._reasoning.index, "content_index": 0, "delta": text}
        )  # fmt: skip
        return events

    def _thought_done(self, status: str = "completed") -> list[Event]:
        entry = self._reasoning
        if entry is None or entry.done:
            return []
        entry.done = True
        item = entry.item
        item["status"] = status
        text = "".join(entry.text)
        item["content"] = [{"type": "reasoning_text", "text": text}]
        if self._on_reasoning is not None:
            self._on_reasoning(item)
        where = {"item_id": item["id"], "output_index": entry.index, "content_index": 0}
        return [{"type": "response.reasoning_text.done", **where, "text": text},
                item_done(entry.index, item)]  # fmt: skip

    def _text(self, text: str) -> list[Event]:
        events: list[Event] = self._thought_done()
        if self._message is None:
            item = {"id": new_item_id("message"), "type": "message", "status": "in_progress",
                    "role": "assistant", "content": []}  # fmt: skip
            self._message = _Message(self._next_index(), item)
            self._items.append(self._message)
            events.append(item_added(self._message.index, item))
            events.append(
                {"type": "response.content_part.added", "item_id": item["id"],
                 "output_index": self._message.index, "content_index": 0,
                 "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}
            )  # fmt: skip
        self._message.text.append(text)
        self.size += len(text)
        events.append(
            {"type": "response.output_text.delta", "item_id": self._message.item["id"],
             "output_index": self._message.index, "content_index": 0, "delta": text,
             "logprobs": []}
        )  # fmt: skip
        return events

    def _call(self, delta: JSONDict, key: int) -> list[Event]:
        events: list[Event] = []
        function = delta.get("function") or {}
        call = self._calls.get(key)
        if call is None:
            events += self._thought_done()
            if key in self._dropped_calls or self._over_call_limit():
                self.ignored_calls += key not in self._dropped_calls
                self._dropped_calls.add(key)
                return events
            name = function.get("name", "")
            shape = (self._shape_of and self._shape_of(name)) or FUNCTION_CALL
            item = {"id": new_item_id(shape.item["type"]), **shape.item}
            item["input" if shape.input_of else "arguments"] = ""
            if shape.for_caller:
                item.setdefault("call_id", delta.get("id") or new_call_id())
                item.setdefault("name", name)
            call = _Call(self._next_index(), item, shape)
            self._calls[key] = call
            self._items.append(call)
            public = {k: v for k, v in item.items() if k not in shape.private}
            events.append(item_added(call.index, public))
            if shape.started_event:
                events.append(self._about(shape.started_event, call))
        elif function.get("name") and not call.item["name"]:
            call.item["name"] = function["name"]
        piece = function.get("arguments")
        if piece:
            call.arguments.append(piece)
            self.size += len(piece)
            if call.shape.arguments_events:
                events.append(
                    {**self._about(call.shape.arguments_events + ".delta", call), "delta": piece}
                )
        return events

    def _next_index(self) -> int:
        return self._start + len(self._items)

    @staticmethod
    def _about(kind: str, entry: _Call) -> Event:
        return {"type": kind, "item_id": entry.item["id"], "output_index": entry.index}

    def _over_call_limit(self) -> bool:
        return self._max_tool_calls is not None and len(self._calls) >= self._max_tool_calls

    @property
    def incomplete(self) -> bool:
        return self.finish_reason == "length"

    def finish(self) -> list[Event]:
        """The `done` events of every item, in output order; fixes the final items."""
        status = "incomplete" if self.incomplete else "completed"
        events: list[Event] = []
        answer = self._answer()
        for entry in self._items:
            item = entry.item
            if "status" in item:  # an approval request has none
                item["status"] = status
            if isinstance(entry, _Message):
                text = "".join(entry.text)
                cited = self._cite(text) if self._cite and entry is answer else []
                part = {"type": "output_text", "text": text, "annotations": cited, "logprobs": []}
                item["content"] = [part]
                common = {"item_id": item["id"], "output_index": entry.index, "content_index": 0}
                events += [{"type": "response.output_text.annotation.added", **common,
                            "annotation_index": n, "annotation": annotation}
                           for n, annotation in enumerate(cited)]  # fmt: skip
                events.append({"type": "response.output_text.done", **common, "text": text,
                               "logprobs": []})  # fmt: skip
                events.append({"type": "response.content_part.done", **common, "part": part})
            elif isinstance(entry, _Reasoning):
                events += self._thought_done(status)
                continue
            elif entry.shape.input_of is not None:
                events += self._custom_input(entry, entry.shape.input_of)
            else:
                item["arguments"] = "".join(entry.arguments)
                shape = entry.shape
                if shape.arguments_events:
                    done = {**self._about(shape.arguments_events + ".done", entry),
                            "arguments": item["arguments"]}  # fmt: skip
                    events.append(done)
                if shape.runs_on_server:
                    item["status"] = "in_progress"
                    continue  # done once the server has run it
            events.append(item_done(entry.index, item))
        return events

    def _answer(self) -> _Message | None:
        """The message that ends the turn: the last one, in a round with no call left for
        the server to run (whose results another round would answer)."""
        if any(isinstance(e, _Call) and e.shape.runs_on_server for e in self._items):
            return None
        return next((e for e in reversed(self._items) if isinstance(e, _Message)), None)

    def _custom_input(self, entry: _Call, input_of: Callable[[str], str]) -> list[Event]:
        """A custom call's input, in one delta: the model writes it inside JSON
        arguments, which cannot be unwrapped safely until they are whole."""
        text = entry.item["input"] = input_of("".join(entry.arguments))
        kind = entry.shape.input_events or "response.custom_tool_call_input"
        return [{**self._about(kind + ".delta", entry), "delta": text},
                {**self._about(kind + ".done", entry), "input": text}]  # fmt: skip

    def server_calls(self) -> list[tuple[int, JSONDict, CallShape]]:
        """The calls the server is to run, in output order: (output index, item, shape)."""
        return [(e.index, e.item, e.shape) for e in self._items
                if isinstance(e, _Call) and e.shape.runs_on_server]  # fmt: skip

    @property
    def output(self) -> list[JSONDict]:
        return [entry.item for entry in self._items]


def item_done(index: int, item: JSONDict) -> Event:
    return {"type": "response.output_item.done", "output_index": index, "item": item}


def item_added(index: int, item: JSONDict) -> Event:
    return {"type": "response.output_item.added", "output_index": index, "item": dict(item)}


def usage_object(usage: JSONDict | None) -> JSONDict | None:
    if usage is None:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    reasoning = int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }
