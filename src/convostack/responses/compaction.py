"""Compaction: a summary, written by a model, that stands in the model's view for the
items it covers, while the conversation keeps every item (the record never changes).

A `compaction` item carries the summary sealed (`sealing.py`) with the id of the last
item it covers. What a model sees of a list of items: everything after the latest
compaction's covered item, with that compaction as one system message holding the
summary (items between the covered one and the compaction, such as the input of the turn
that made it, stay). If the covered item is not in the list (a client sent a compacted
window back as input), the compaction stands for everything before it. A new compaction
summarises the previous summary with what followed it: one summary, never a chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from convostack.errors import InvalidRequestError
from convostack.ids import new_item_id
from convostack.providers.base import JSONDict
from convostack.responses.context import approval_requests, estimate_tokens, to_messages
from convostack.responses.sealing import SealBroken, Sealer

Item = dict[str, Any]
PURPOSE = "compaction"

SUMMARY_PROMPT = (
    "You are compacting a conversation so that it can go on in less space. Write a "
    "summary that a model can continue from as if it had read everything: keep every "
    "fact, name, number and decision, the user's goals and preferences, open tasks and "
    "questions, and the results of tool calls (what was called and what it returned). "
    "Leave out pleasantries and repetition. Write plain text, in the conversation's "
    "language, in the third person, with no preamble."
)
# A summary is bounded like any answer, so that summaries of summaries cannot grow.
SUMMARY_MAX_TOKENS = 2048
SUMMARY_HEADER = "Summary of the earlier conversation (it stands for the messages before it):"


@dataclass(frozen=True, slots=True)
class CompactionPlan:
    """A compaction a turn makes before its first model call (`context_management`)."""

    items: list[Item]  # what to summarise (after `summary`)
    summary: str | None  # the summary already standing for what came before them
    covers: str | None  # the last item the new summary will stand for
    history_messages: int  # the request's leading messages the summary replaces


@dataclass(frozen=True, slots=True)
class Window:
    """The items a model sees, and the summary that opens them (if any)."""

    items: list[Item]
    summary: str | None
    summarised: int  # items of the list left out because a summary stands for them


class Compactor:
    def __init__(self, sealer: Sealer):
        self._sealer = sealer
        self.sealer = sealer  # shared with sealed reasoning (`reasoning.py`)

    def check(self, items: list[Item], param: str) -> None:
        """Every compaction item in `items` opens (a 400 naming it otherwise)."""
        for n, item in enumerate(items):
            if item.get("type") == "compaction":
                self._open(item, f"{param}[{n}].encrypted_content")

    def window(self, items: list[Item]) -> Window:
        latest = next(
            (n for n in range(len(items) - 1, -1, -1) if items[n].get("type") == "compaction"),
            None,
        )
        if latest is None:
            return Window(items, None, 0)
        payload = self._open(items[latest], "input")
        covers = payload.get("covers")
        start = next((n + 1 for n in range(latest) if items[n].get("id") == covers), latest)
        summary = str(payload.get("summary", ""))
        kept = [*items[start:latest], _summary_message(summary), *items[latest + 1 :]]
        return Window(kept, summary, start + 1)

    def views(
        self, history: list[Item], new_input: list[Item]
    ) -> tuple[list[Item], list[Item], str | None]:
        """What the model sees of the history and of the input, and the standing summary.
        A compaction in the input (a compacted window sent back) stands for the history
        too, so then all of it is the input's."""
        if any(item.get("type") == "compaction" for item in new_input):
            window = self.window([*history, *new_input])
            return [], window.items, window.summary
        window = self.window(history)
        return window.items, new_input, window.summary

    def plan(
        self,
        threshold: int | None,
        history: list[Item],
        view: list[Item],
        summary: str | None,
        request: JSONDict,
    ) -> CompactionPlan | None:
        """A compaction when the request would pass `threshold` tokens and there is
        history to summarise; it will replace the request's history messages."""
        if threshold is None or not history or estimate_tokens(request["messages"]) <= threshold:
            return None
        items = [i for i in view if not _is_summary(i)]
        seen = len(to_messages(view, approval_requests(view)))
        return CompactionPlan(items, summary, history[-1].get("id"), seen)

    def item(self, summary: str, covers: str | None, model: str) -> JSONDict:
        sealed = self._sealer.seal({"summary": summary, "covers": covers, "model": model}, PURPOSE)
        return {"id": new_item_id("compaction"), "type": "compaction",
                "encrypted_content": sealed, "created_by": "convostack"}  # fmt: skip

    def _open(self, item: Item, param: str) -> dict[str, Any]:
        try:
            return self._sealer.open(str(item.get("encrypted_content", "")), PURPOSE)
        except SealBroken as exc:
            raise InvalidRequestError(
                f"Invalid '{param}': this compaction's encrypted_content was {exc}. Send "
                "compaction items back exactly as this server made them.",
                code="invalid_encrypted_content",
                param=param,
            ) from None


def _is_summary(item: Item) -> bool:
    content = item.get("content")
    return (
        item.get("role") == "system" and isinstance(content, list) and len(content) == 1
        and str(content[0].get("text", "")).startswith(SUMMARY_HEADER)
    )  # fmt: skip


def summary_message(summary: str) -> JSONDict:
    """The chat message a summary becomes."""
    return {"role": "system", "content": f"{SUMMARY_HEADER}\n{summary}"}


def _summary_message(summary: str) -> Item:
    text = f"{SUMMARY_HEADER}\n{summary}"
    return {"type": "message", "role": "system", "content": [{"type": "input_text", "text": text}]}


def summary_request(native_model: str, items: list[Item], summary: str | None) -> JSONDict:
    """The chat request that asks a model to summarise `items` (after `summary`)."""
    lines = [f"{SUMMARY_HEADER}\n{summary}"] if summary else []
    for message in to_messages(items):
        content = message.get("content")
        if message.get("tool_calls"):
            calls = ", ".join(
                f"{c['function']['name']}({c['function']['arguments']})"
                for c in message["tool_calls"]
            )
            lines.append(f"assistant called: {calls}")
        elif content:
            text = content if isinstance(content, str) else str(content)
            lines.append(f"{message['role']}: {text}")
    return {
        "model": native_model,
        "max_tokens": SUMMARY_MAX_TOKENS,
        "messages": [
            {"role": "system", "content": SUMMARY_PROMPT},
            {"role": "user", "content": "\n\n".join(lines) or "(nothing yet)"},
        ],
    }


def summary_text(completion: JSONDict) -> str:
    choices = completion.get("choices") or [{}]
    return str((choices[0].get("message") or {}).get("content") or "").strip()
