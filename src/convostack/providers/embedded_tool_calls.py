"""Tool calls for a model whose chat template has none (the embedded SmolLM2).

llama.cpp ignores `tools` when the template shows none, so a call that `tool_choice`
demands is made here instead: the function's parameter schema becomes the request's
`response_format` (a JSON schema, which the runtime turns into a grammar), the prompt
says which function to call, and the JSON the model writes under that grammar is turned
back into tool-call deltas. With one function the model writes its arguments; with
several, `{"name": ..., "arguments": ...}` for the one it picks.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from convostack.providers.base import JSONDict, UnsupportedByProvider


@dataclass(frozen=True, slots=True)
class ToolPlan:
    """The model must call a function: `name`, or when None, one it picks from several."""

    name: str | None


def plan_tools(prepared: JSONDict) -> ToolPlan | None:
    """Under a tool_choice that demands a call: the grammar and prompt that make it."""
    functions = _functions(prepared.pop("tools", None) or [])
    choice = prepared.pop("tool_choice", None)
    prepared.pop("parallel_tool_calls", None)
    if choice in (None, "auto", "none"):
        return None  # this model's template shows no tools: a text answer
    if choice == "required" and functions:
        selected = list(functions)
    elif isinstance(choice, dict) and choice.get("type", "function") == "function":
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        if name not in functions:
            raise _bad_tool_choice(f"tool_choice names the function {name!r}, not in tools.")
        selected = [name]
    elif choice == "required":
        raise _bad_tool_choice("tool_choice 'required' needs at least one tool in tools.")
    else:
        raise _bad_tool_choice(
            "tool_choice must be 'none', 'auto', 'required' or "
            '{"type": "function", "function": {"name": ...}} for the embedded model.'
        )
    described = [
        f"{name}: {functions[name].get('description') or ''} Arguments, as JSON schema: "
        f"{json.dumps(_parameters(functions[name]))}"
        for name in selected
    ]
    if len(selected) == 1:
        schema = _parameters(functions[selected[0]])
        instructions = f"Call the function {described[0]}\nReply with the arguments only."
    else:
        schema = {"anyOf": [_named_call(name, functions[name]) for name in selected]}
        instructions = (
            "Call one of these functions:\n" + "\n".join(f"- {d}" for d in described) + "\n"
            'Reply only with {"name": <function name>, "arguments": <its arguments>}.'
        )
    prepared["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": "tool_call", "schema": schema},
    }
    prepared["messages"] = _with_instructions(prepared["messages"], instructions)
    return ToolPlan(selected[0] if len(selected) == 1 else None)


def _functions(tools: Any) -> dict[str, JSONDict]:
    functions: dict[str, JSONDict] = {}
    for n, tool in enumerate(tools if isinstance(tools, list) else [tools]):
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name or tool.get("type") != "function":
            raise UnsupportedByProvider(
                "The embedded model takes only tools of type 'function', each with a name.",
                code="invalid_value",
                param=f"tools[{n}]",
            )
        functions[name] = tool["function"]
    return functions


def _bad_tool_choice(message: str) -> UnsupportedByProvider:
    return UnsupportedByProvider(message, code="invalid_value", param="tool_choice")


def _named_call(name: str, function: JSONDict) -> JSONDict:
    return {
        "type": "object",
        "properties": {"name": {"const": name}, "arguments": _parameters(function)},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def _parameters(function: JSONDict) -> JSONDict:
    parameters = function.get("parameters")
    return parameters if isinstance(parameters, dict) and parameters else {"type": "object"}


def _with_instructions(messages: list[Any], instructions: str) -> list[Any]:
    first = messages[0] if messages else None
    if isinstance(first, dict) and first.get("role") in ("system", "developer"):
        content = first.get("content")
        if isinstance(content, str):
            return [{**first, "content": f"{content}\n\n{instructions}"}, *messages[1:]]
        if isinstance(content, list):
            part = {"type": "text", "text": f"\n\n{instructions}"}
            return [{**first, "content": [*content, part]}, *messages[1:]]
    return [{"role": "system", "content": instructions}, *messages]


@dataclass(slots=True)
class ToolCallChunks:
    """Turns the JSON the model writes under a tool plan into tool-call deltas."""

    plan: ToolPlan
    call_id: str = field(default_factory=lambda: "call_" + secrets.token_hex(12))
    started: bool = False
    buffered: list[str] = field(default_factory=list)

    def convert(self, chunk: JSONDict) -> JSONDict | None:
        choices = chunk.get("choices")
        if not choices:
            return chunk  # the usage chunk
        choice = choices[0]
        delta = dict(choice.get("delta") or {})
        text = delta.pop("content", None)
        if "role" in delta:
            delta["content"] = None
        finish = choice.get("finish_reason")
        calls: list[JSONDict] = []
        if self.plan.name is not None:
            if text:
                calls.append(self._call(self.plan.name, text))
        else:
            if text:
                self.buffered.append(text)
            if finish is not None:
                calls.extend(self._buffered_call(delta))
        if calls:
            delta["tool_calls"] = calls
        if finish == "stop" and self.started:
            finish = "tool_calls"
        if not delta and finish is None and not choice.get("logprobs"):
            return None
        return {**chunk, "choices": [{**choice, "delta": delta, "finish_reason": finish}]}

    def _call(self, name: str, arguments: str) -> JSONDict:
        if self.started:
            return {"index": 0, "function": {"arguments": arguments}}
        self.started = True
        return {
            "index": 0,
            "id": self.call_id,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }

    def _buffered_call(self, delta: JSONDict) -> list[JSONDict]:
        text = "".join(self.buffered)
        try:
            call = json.loads(text)
            name, arguments = call["name"], call["arguments"]
        except (ValueError, KeyError, TypeError):
            delta["content"] = text  # cut off before the JSON was complete
            return []
        return [self._call(str(name), json.dumps(arguments))]
