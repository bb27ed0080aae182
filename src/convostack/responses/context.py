"""From Responses items to the Chat Completions request a provider understands.

History items, then `instructions` as a system message for this turn only, then the new
input: every item, in order, with no cap. Consecutive `function_call` items become one
assistant message with several `tool_calls` (parallel calls), and each
`function_call_output` a `tool` message; `custom_tool_call`s and namespaced calls are
shown as the functions they were offered as. A reasoning item's text goes with the next
assistant message as `reasoning_content`. Items a chat model cannot see (reasoning
summaries, built-in tool traces) are left out of the model's input, and only of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from convostack.providers.base import JSONDict
from convostack.responses.models import (
    ResponseCreate,
    TextFormatJsonObject,
    TextFormatJsonSchema,
)
from convostack.responses.reasoning import reasoning_text

Item = dict[str, Any]


def _text_of(parts: Any) -> str:
    if isinstance(parts, str):
        return parts
    texts = []
    for part in parts or []:
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            texts.append(part.get("text", ""))
        elif kind == "refusal":
            texts.append(part.get("refusal", ""))
    return "\n".join(texts)


def _user_content(parts: list[Item]) -> str | list[JSONDict]:
    """Plain text when the message is only text (what every engine accepts), else parts."""
    if all(p.get("type") == "input_text" for p in parts):
        return _text_of(parts)
    out: list[JSONDict] = []
    for part in parts:
        kind = part.get("type")
        if kind == "input_text":
            out.append({"type": "text", "text": part.get("text", "")})
        elif kind == "input_image" and part.get("image_url"):
            image: JSONDict = {"url": part["image_url"]}
            if part.get("detail") in ("low", "high", "auto"):
                image["detail"] = part["detail"]
            out.append({"type": "image_url", "image_url": image})
        elif kind == "input_file" and part.get("file_data"):
            out.append(
                {"type": "file", "file": {"file_data": part["file_data"],
                                          "filename": part.get("filename") or "file"}}
            )  # fmt: skip
    return out


_ASSISTANT_TEXT = frozenset(("input_text", "output_text", "text"))


def _single_text(role: str, content: Any) -> str | None:
    """The text of a message made of one text part, exactly as `_text_of` and
    `_user_content` would give it; None for any other shape."""
    if type(content) is not list or len(content) != 1:
        return None
    part = content[0]
    kind = part.get("type")
    if kind == "input_text" or (role == "assistant" and kind in _ASSISTANT_TEXT):
        text: str = part.get("text", "")
        return text
    return None


def _tool_call(call_id: str, name: str, arguments: str) -> JSONDict:
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": arguments}}  # fmt: skip


def _client_call(item: Item) -> JSONDict:
    """A call the caller ran, as the model made it: a namespace's tool by its flat name
    (`tools/namespace.py`), a custom tool as a function of one string, `input`."""
    name = item["name"]
    if item.get("namespace"):
        name = f"{item['namespace']}__{name}"
    if item["type"] == "custom_tool_call":
        arguments = orjson.dumps({"input": item.get("input", "")}).decode()
    else:
        arguments = item.get("arguments", "")
    return _tool_call(item["call_id"], name, arguments)


def _mcp_result(item: Item) -> str:
    """What the model reads of an MCP call: its output, or what went wrong."""
    if item.get("status") != "failed" and item.get("output") is not None:
        return str(item["output"])
    error = item.get("error") or {}
    if error.get("type") == "mcp_tool_execution_error":
        return "Error: " + _text_of(
            [p for p in error.get("content") or [] if p.get("type") == "text"]
        )
    return f"Error: {error.get('message') or 'the call failed.'}"


def _denial(item: Item, requests: dict[str, Item]) -> tuple[JSONDict, JSONDict] | None:
    """A denied approval, shown to the model as the call it asked for and a refusal."""
    request = requests.get(item.get("approval_request_id") or "")
    if item.get("approve") or request is None:
        return None
    reason = f": {item['reason']}" if item.get("reason") else "."
    return (
        _tool_call(request["id"], request["name"], request.get("arguments", "")),
        {"role": "tool", "tool_call_id": request["id"],
         "content": f"The user denied this tool call{reason}"},
    )  # fmt: skip


def search_text(results: list[Item] | None) -> str:
    """A file_search call's results as the model reads them: each passage under its
    file's name. A later turn sees them only if the item kept them (include
    file_search_call.results)."""
    if results is None:
        return "(The results of this search were not kept; search again if needed.)"
    if not results:
        return "No matching passages were found in the files."
    return "\n\n".join(
        f"[{n}] From the file '{r.get('filename')}' (file_id {r.get('file_id')}):\n{r.get('text')}"
        for n, r in enumerate(results, start=1)
    )


def approval_requests(*item_lists: Iterable[Item]) -> dict[str, Item]:
    return {item["id"]: item for items in item_lists for item in items
            if item.get("type") == "mcp_approval_request"}  # fmt: skip


def to_messages(
    items: Iterable[Item],
    requests: dict[str, Item] | None = None,
    texts: dict[str, str] | None = None,
) -> list[JSONDict]:
    """Chat messages for items; `texts` are what the model read as the result of
    server-run calls whose item does not hold it (by item id)."""
    conversion = Conversion(requests, texts)
    conversion.add(items)
    return conversion.finish()


class Conversion:
    """`to_messages` that can stop and go on: the messages of the items added so far and
    what is still pending (calls waiting for the message that closes them, reasoning
    for the next assistant message), so that a long history already converted is
    carried on with its new items alone (`history_cache.py`). `unresolved`: approval
    responses whose request was not among the requests known (`requests`)."""

    def __init__(
        self, requests: dict[str, Item] | None = None, texts: dict[str, str] | None = None
    ):
        self.requests = requests or {}
        self.texts = texts or {}
        self.messages: list[JSONDict] = []
        self.pending_calls: list[JSONDict] = []
        self.pending_results: list[JSONDict] = []  # of server-run calls, with their result
        self.thoughts: list[str] = []  # reasoning, for the assistant message that follows
        self.unresolved: set[str] = set()
        self.items = 0  # how many items were added
        self.compactions = 0  # how many of them are compaction items

    def copy(self, requests: dict[str, Item] | None = None) -> Conversion:
        """An independent copy (the message dicts are shared: none is ever changed)."""
        other = Conversion(self.requests if requests is None else requests, self.texts)
        other.messages = list(self.messages)
        other.pending_calls = list(self.pending_calls)
        other.pending_results = list(self.pending_results)
        other.thoughts = list(self.thoughts)
        other.unresolved = set(self.unresolved)
        other.items = self.items
        other.compactions = self.compactions
        return other

    def finish(self) -> list[JSONDict]:
        self._flush_calls()
        return self.messages

    def _assistant(self, message: JSONDict) -> None:
        if self.thoughts:  # the field engines' chat templates read (vLLM, llama.cpp)
            message["reasoning_content"] = "\n".join(self.thoughts)
            self.thoughts.clear()
        self.messages.append(message)

    def _flush_calls(self) -> None:
        if self.pending_calls:
            self._assistant(
                {"role": "assistant", "content": None, "tool_calls": list(self.pending_calls)}
            )
            self.pending_calls.clear()
            self.messages.extend(self.pending_results)
            self.pending_results.clear()

    def add(self, items: Iterable[Item]) -> None:
        for item in items:
            self.items += 1
            self._add(item)

    def _add(self, item: Item) -> None:
        kind = item.get("type", "message")
        if kind in ("function_call", "custom_tool_call"):
            self.pending_calls.append(_client_call(item))
            return
        if kind == "mcp_call":
            self.pending_calls.append(
                _tool_call(item["id"], item["name"], item.get("arguments", ""))
            )
            self.pending_results.append(
                {"role": "tool", "tool_call_id": item["id"], "content": _mcp_result(item)}
            )
            return
        if kind == "file_search_call":
            arguments = orjson.dumps({"queries": item.get("queries") or []}).decode()
            self.pending_calls.append(_tool_call(item["id"], "file_search", arguments))
            read = self.texts.get(item["id"]) or search_text(item.get("results"))
            self.pending_results.append(
                {"role": "tool", "tool_call_id": item["id"], "content": read}
            )
            return
        if kind == "mcp_approval_response":
            request_id = item.get("approval_request_id") or ""
            if not item.get("approve") and request_id not in self.requests:
                self.unresolved.add(request_id)
            denial = _denial(item, self.requests)
            if denial is not None:
                self.pending_calls.append(denial[0])
                self.pending_results.append(denial[1])
            return
        if kind == "reasoning":
            thought = reasoning_text(item)
            if thought:
                self.thoughts.append(thought)
            return
        if kind == "compaction":
            self.compactions += 1
        self._flush_calls()
        if kind == "message":
            role = item["role"]
            text = _single_text(role, item["content"])
            if role == "assistant":
                self._assistant({"role": "assistant", "content": _text_of(item["content"])
                                 if text is None else text})  # fmt: skip
            elif text is not None:  # the usual shape, converted without the general walk
                self.messages.append({"role": role, "content": text})
            else:
                self.messages.append({"role": role, "content": _user_content(item["content"])})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            self.messages.append(
                {"role": "tool", "tool_call_id": item.get("call_id", ""),
                 "content": _text_of(item.get("output"))}
            )  # fmt: skip


def convert_history(history: list[Item], prefix: Conversion | None = None) -> Conversion:
    """The history's messages, not finished, with the approval requests of the history
    alone; carried on from `prefix` (a conversion of the first `prefix.items` items)
    when one is given and still holds (an approval it answered without its request
    does not find that request among the new items)."""
    if prefix is not None and prefix.items <= len(history):
        tail = history[prefix.items :]
        tail_requests = approval_requests(tail)
        if not prefix.unresolved & tail_requests.keys():
            conversion = prefix.copy({**prefix.requests, **tail_requests})
            conversion.add(tail)
            return conversion
    conversion = Conversion(approval_requests(history))
    conversion.add(history)
    return conversion


def chat_request(
    body: ResponseCreate,
    native_model: str,
    history: list[Item],
    new_input: list[Item],
    tools: list[JSONDict] | None = None,
    tool_choice: Any = None,
    converted: Conversion | None = None,
) -> JSONDict:
    """The provider request for one turn: `tools` are the chat functions offered, and
    `tool_choice` the chat form of the request's choice; `converted`, when given, is
    `history` already converted (`convert_history`)."""
    input_requests = approval_requests(new_input)
    if converted is not None and not converted.unresolved & input_requests.keys():
        requests = {**converted.requests, **input_requests}
        messages = converted.copy().finish()
    else:
        requests = approval_requests(history, new_input)
        messages = to_messages(history, requests)
    if body.instructions:
        messages.append({"role": "system", "content": body.instructions})
    messages += to_messages(new_input, requests)
    request: JSONDict = {"model": native_model, "messages": messages}
    if tools:
        request["tools"] = tools
        if tool_choice is not None:
            request["tool_choice"] = tool_choice
        if body.parallel_tool_calls is not None:
            request["parallel_tool_calls"] = body.parallel_tool_calls
    for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p"),
                         ("max_output_tokens", "max_tokens")):  # fmt: skip
        value = getattr(body, ours)
        if value is not None:
            request[theirs] = value
    if body.prompt_cache_key:  # a cache-affinity hint engines and routers understand
        request["prompt_cache_key"] = body.prompt_cache_key
    text_format = body.text.format if body.text else None
    if isinstance(text_format, TextFormatJsonSchema):
        schema: JSONDict = {"name": text_format.name, "schema": text_format.schema_}
        if text_format.strict is not None:
            schema["strict"] = text_format.strict
        request["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif isinstance(text_format, TextFormatJsonObject):
        request["response_format"] = {"type": "json_object"}
    return request


def estimate_tokens(messages: list[JSONDict]) -> int:
    """A cheap upper-side estimate (about 3 characters a token, plus framing)."""
    total = 0
    for message in messages:
        content = message.get("content")
        size = len(content) if isinstance(content, str) else len(str(content or ""))
        total += size // 3 + 8 + len(str(message.get("tool_calls") or "")) // 3
    return total
