"""The tool loop: one turn's model calls and the server-side tool calls between them.

The model is called; the calls it makes to server-side tools are run by the server, their
results added to the turn's output and sent back to the model, until it answers without
such a call, makes a call only the caller can run (a `function` tool, or an MCP call that
needs the caller's approval), or a bound is reached:

- `max_tool_calls` (the request's): calls past it are ignored, as OpenAI ignores them; the
  model is then asked to answer without tools, and a round of nothing but ignored calls
  ends the turn `incomplete` (reason `max_tool_calls`);
- `max_tool_iterations` (setting): model calls per turn; past it, `incomplete`
  (reason `max_tool_iterations`);
- the breaker (setting `tool_breaker_failures`): a server whose calls failed that many
  times in a row in this turn is not called again, and the turn ends `incomplete`
  (reason `tool_failures`) rather than let the model retry it for ever;
- a per-call timeout (setting `tool_call_timeout_seconds`), inside the tool kinds.

The same loop serves streaming and non-streaming turns: it yields every event as it
happens (a non-streaming turn ignores them). It writes nothing: the service appends the
whole output in one transaction at the end, so a turn that fails anywhere appends nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, cast

from convostack.observability.hooks import NOT_OBSERVED, Observer
from convostack.providers.base import JSONDict
from convostack.responses.compaction import (
    CompactionPlan,
    summary_message,
    summary_request,
    summary_text,
)
from convostack.responses.context import to_messages
from convostack.responses.output import CallShape, Event, OutputBuilder, item_added, item_done
from convostack.responses.reasoning import INCLUDE, seal
from convostack.responses.tools.base import TurnTools
from convostack.responses.tools.settings import ToolSettings

if TYPE_CHECKING:
    from convostack.responses.turn import PreparedTurn

_FORCED = ("required",)
_NOT_CALLS = ("message", "reasoning")


class ToolLoop:
    def __init__(
        self,
        turn: PreparedTurn,
        settings: ToolSettings,
        max_output_chars: int,
        observer: Observer = NOT_OBSERVED,
    ):
        self._turn = turn
        self._observer = observer
        self._settings = settings
        self._max_output_chars = max_output_chars
        self._spent = 0  # characters of earlier model calls' output
        self.output: list[JSONDict] = []
        self.usage: JSONDict | None = None
        self.incomplete_reason: str | None = None
        self.compaction_summary: str | None = None
        self._failures: dict[str, int] = {}
        self._tripped = False

    async def events(self, streaming: bool) -> AsyncIterator[Event]:
        turn = self._turn
        messages = list(turn.request["messages"])
        if turn.compaction is not None:
            async for event in self._compact(turn.compaction):
                yield event
            summary = self.compaction_summary or ""
            messages = [summary_message(summary), *messages[turn.compaction.history_messages :]]
        async for event in self._opening():
            yield event
        messages += to_messages(self.output)
        calls_left = turn.body.max_tool_calls
        for round_number in range(1, self._settings.max_tool_iterations + 1):
            builder = OutputBuilder(
                calls_left, len(self.output), turn.tools.shape_of, self._seal_reasoning,
                turn.tools.citations,
            )  # fmt: skip
            request = self._request(messages, round_number, calls_left)
            async for event in self._model(request, builder, streaming):
                yield event
            for event in builder.finish():
                yield event
            made = builder.output
            self.output += made
            self._spent += builder.size
            self._count(builder.usage)
            if builder.incomplete:
                for event in self._cut_short(builder):
                    yield event
                self.incomplete_reason = self.incomplete_reason or "max_output_tokens"
                return
            server_calls = builder.server_calls()
            async for event in self._run(server_calls):
                yield event
            # Calls only: a reasoning item before them is neither a call nor the caller's.
            calls = sum(item["type"] not in _NOT_CALLS for item in made)
            if calls_left is not None:
                calls_left -= calls
            if len(server_calls) < calls:
                return  # a call for the caller: a function call, or one awaiting approval
            if not server_calls:
                if builder.ignored_calls and not made:
                    self.incomplete_reason = "max_tool_calls"
                return
            if self._tripped:
                self.incomplete_reason = "tool_failures"
                return
            messages += to_messages(made, texts=turn.tools.model_texts())
        self.incomplete_reason = "max_tool_iterations"

    @staticmethod
    def _cut_short(builder: OutputBuilder) -> Iterator[Event]:
        """Server-side calls whose arguments the output bound cut off are not run: they
        end `incomplete`, in their wire shape, saying why."""
        for index, item, shape in builder.server_calls():
            cast(TurnTools, shape.runner).refuse(
                item, "Not run: the model's output reached its bound before the call was whole."
            )
            item["status"] = "incomplete"
            yield item_done(index, item)

    def _seal_reasoning(self, item: JSONDict) -> None:
        if INCLUDE in (self._turn.body.include or ()):
            seal(self._turn.compactor.sealer, item)

    async def _compact(self, plan: CompactionPlan) -> AsyncIterator[Event]:
        """`context_management`: a summary first, standing for the history from now on."""
        turn = self._turn
        placeholder = turn.compactor.item("", plan.covers, turn.route.public_id)
        index = len(self.output)
        yield item_added(index, {**placeholder, "encrypted_content": ""})
        yield _about("response.compaction.compacting", index, placeholder)
        request = summary_request(turn.route.model.id, plan.items, plan.summary)
        completion = await turn.route.provider.chat(request)
        self._count(completion.get("usage"))
        self.compaction_summary = summary_text(completion)
        item = turn.compactor.item(self.compaction_summary, plan.covers, turn.route.public_id)
        item["id"] = placeholder["id"]
        self.output.append(item)
        yield item_done(index, item)

    async def _opening(self) -> AsyncIterator[Event]:
        """Items before the first model call: tool lists, calls approved in the input."""
        to_run: list[tuple[int, JSONDict, CallShape]] = []
        for opening, _part in self._turn.tools.opening_items():
            index, item = len(self.output), opening.item
            self.output.append(item)
            shape = opening.shape
            if shape is None:
                progress = opening.progress
                yield item_added(index, {**item, "tools": []} if progress else item)
                if progress:
                    yield _about(progress + ".in_progress", index, item)
                    yield _about(progress + ".completed", index, item)
                yield item_done(index, item)
                continue
            yield item_added(index, {**item, "arguments": ""})
            if shape.started_event:
                yield _about(shape.started_event, index, item)
            if shape.arguments_events:
                yield {**_about(shape.arguments_events + ".delta", index, item),
                       "delta": item["arguments"]}  # fmt: skip
                yield {**_about(shape.arguments_events + ".done", index, item),
                       "arguments": item["arguments"]}  # fmt: skip
            to_run.append((index, item, shape))
        async for event in self._run(to_run):
            yield event

    def _request(
        self, messages: list[JSONDict], round_number: int, calls_left: int | None
    ) -> JSONDict:
        request = {**self._turn.request, "messages": messages}
        if "tools" in request:
            choice = request.get("tool_choice")
            if calls_left is not None and calls_left <= 0:
                request["tool_choice"] = "none"  # the budget is spent: answer with what you have
            elif round_number > 1 and (choice in _FORCED or isinstance(choice, dict)):
                request["tool_choice"] = "auto"  # a forced call is forced once, not for ever
        return request

    async def _model(
        self, request: JSONDict, builder: OutputBuilder, streaming: bool
    ) -> AsyncIterator[Event]:
        provider = self._turn.route.provider
        if not streaming:
            for event in builder.feed(await provider.chat(request)):
                yield event
            self._bound(builder)
            return
        chunks = provider.chat_stream(
            {**request, "stream": True, "stream_options": {"include_usage": True}}
        )
        try:
            async for chunk in chunks:
                for event in builder.feed(chunk):
                    yield event
                if self._bound(builder):
                    break  # and the upstream's generation is closed below
        finally:
            # Closing the provider's stream early is what cancels the generation upstream.
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    def _bound(self, builder: OutputBuilder) -> bool:
        """Past `max_output_chars` (the setting max_item_text_chars) in this turn: stop,
        `incomplete` with reason `max_output_chars`, rather than keep an endless answer."""
        if self._size(builder) <= self._max_output_chars:
            return False
        builder.finish_reason = "length"  # its items end `incomplete`
        self.incomplete_reason = "max_output_chars"
        return True

    def _size(self, builder: OutputBuilder) -> int:
        return self._spent + builder.size

    async def _run(self, calls: list[tuple[int, JSONDict, CallShape]]) -> AsyncIterator[Event]:
        """Run calls together; report them in output order; count failures per server."""
        if not calls:
            return
        limit = self._settings.tool_breaker_failures
        for index, item, shape in calls:
            if shape.running_event:
                yield _about(shape.running_event, index, item)

        async def run_one(item: JSONDict, shape: CallShape) -> bool:
            runner = cast(TurnTools, shape.runner)
            key = runner.breaker_key(item)
            if self._failures.get(key, 0) >= limit:
                runner.refuse(item, f"Not called: this server failed {limit} times in a row in "
                                    "this response (setting tool_breaker_failures).")  # fmt: skip
                return False
            return await runner.run(item)

        results = await asyncio.gather(*(run_one(item, shape) for _, item, shape in calls))
        for (index, item, shape), succeeded in zip(calls, results, strict=True):
            key = cast(TurnTools, shape.runner).breaker_key(item)
            self._failures[key] = 0 if succeeded else self._failures.get(key, 0) + 1
            self._tripped = self._tripped or self._failures[key] >= limit
            self._observer.tool_called(item["type"], "completed" if succeeded else "failed")
            kind = shape.completed_event if succeeded else shape.failed_event
            if kind:
                yield _about(kind, index, item)
            yield item_done(index, item)

    def _count(self, usage: JSONDict | None) -> None:
        if not usage:
            return
        if self.usage is None:
            self.usage = {}
        total = self.usage
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            total[key] = int(total.get(key) or 0) + int(usage.get(key) or 0)
        for details, field in (("prompt_tokens_details", "cached_tokens"),
                               ("completion_tokens_details", "reasoning_tokens")):  # fmt: skip
            value = int((usage.get(details) or {}).get(field) or 0)
            if value:
                bucket = total.setdefault(details, {})
                bucket[field] = int(bucket.get(field) or 0) + value


def _about(kind: str, index: int, item: JSONDict) -> Event:
    return {"type": kind, "item_id": item["id"], "output_index": index}
