"""`custom` tools: free-form text input for the caller to run (Codex's `apply_patch`).

A chat model knows only functions, so each custom tool is offered as a function with one
string parameter, `input`; the model's call becomes a `custom_tool_call` item whose
`input` is that string, and a `custom_tool_call_output` sent back is the tool's result
(`context.py`). Like `function` calls, they end the turn for the caller to run.

Grammars (`format: {"type": "grammar", "syntax": "lark"|"regex"}`) are checked when the
request arrives (a definition that does not compile is a 400) and enforced after the
fact: OpenAI-compatible engines each spell constrained decoding their own way
(vLLM `guided_grammar`/`guided_regex`, later `structured_outputs`; SGLang `ebnf`/`regex`)
and would only constrain the whole JSON arguments, not the string inside them. An input
that does not match fails the response (`invalid_tool_input`, HTTP 502 or
`response.failed`): the caller never receives a call it cannot apply.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from convostack.errors import APIError, invalid_value
from convostack.providers.base import JSONDict
from convostack.responses.models import NamedToolChoice
from convostack.responses.output import CallShape
from convostack.responses.tools.base import PrepareContext, TurnTools
from convostack.responses.tools.function import CallerTools, validated
from convostack.responses.tools.settings import ToolSettings

INPUT_EVENTS = "response.custom_tool_call_input"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextFormat(_Strict):
    type: Literal["text"]


class GrammarFormat(_Strict):
    type: Literal["grammar"]
    syntax: Literal["lark", "regex"]
    definition: str = Field(min_length=1)


class CustomTool(_Strict):
    type: Literal["custom"]
    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    format: TextFormat | GrammarFormat | None = Field(default=None, discriminator="type")
    defer_loading: bool | None = None
    allowed_callers: list[Literal["direct", "programmatic"]] | None = None


@functools.lru_cache(maxsize=64)
def _lark(definition: str) -> Any:
    """The parser, or None for a grammar in llguidance's richer dialect that Lark cannot
    run (terminals that match nothing, like Codex's `/(.*)/`): accepted, not enforced."""
    import lark  # imported on first use: most requests have no Lark grammar

    try:
        return lark.Lark(definition, start="start", parser="earley")
    except lark.exceptions.LarkError as exc:
        if "zero-width" in str(exc):
            return None
        raise


@functools.lru_cache(maxsize=64)
def _regex(definition: str) -> re.Pattern[str]:
    return re.compile(definition)


def check_grammar(grammar: GrammarFormat, param: str) -> None:
    """A 400 for a grammar that does not compile, naming the field."""
    try:
        if grammar.syntax == "regex":
            _regex(grammar.definition)
        else:
            _lark(grammar.definition)
    except Exception as exc:  # re.error, or any of Lark's grammar errors
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise invalid_value(
            f"{param}.format.definition",
            f"Invalid '{param}.format.definition': the {grammar.syntax} grammar does not "
            f"compile: {first_line[:300]}",
        ) from None


def matches(grammar: GrammarFormat, text: str) -> bool:
    if grammar.syntax == "regex":
        return _regex(grammar.definition).fullmatch(text) is not None
    import lark

    parser = _lark(grammar.definition)
    if parser is None:
        return True
    try:
        parser.parse(text)
    except lark.exceptions.LarkError:
        return False
    return True


def input_from_arguments(arguments: str) -> str:
    """The model wrote `{"input": "..."}`; a model that wrote anything else (plain text,
    another single string field) is taken at its word rather than failed."""
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(parsed, dict):
        if isinstance(parsed.get("input"), str):
            return str(parsed["input"])
        strings = [v for v in parsed.values() if isinstance(v, str)]
        if len(parsed) == 1 and strings:
            return strings[0]
    return parsed if isinstance(parsed, str) else arguments


def chat_function(tool: JSONDict, name: str | None = None) -> JSONDict:
    """The function a chat model is offered for a custom tool."""
    description = tool.get("description") or ""
    grammar = (tool.get("format") or {}).get("type") == "grammar"
    if grammar:  # the model writes better input when it sees what is expected
        definition = tool["format"]["definition"]
        description += (
            f"\n\nThe input must match this {tool['format']['syntax']} grammar:\n{definition}"
        )
    function: JSONDict = {
        "name": name or tool["name"],
        "parameters": {
            "type": "object",
            "properties": {"input": {"type": "string"}},
            "required": ["input"],
            "additionalProperties": False,
        },
    }
    if description.strip():
        function["description"] = description.strip()
    return {"type": "function", "function": function}


def custom_shape(tool: JSONDict, extra: JSONDict | None = None) -> CallShape:
    """How a call of this custom tool is shown: a `custom_tool_call` for the caller, its
    input checked against the tool's grammar."""
    grammar_spec = (tool.get("format") or {}) if isinstance(tool.get("format"), dict) else {}
    grammar = GrammarFormat(**grammar_spec) if grammar_spec.get("type") == "grammar" else None
    name = tool["name"]

    def input_of(arguments: str) -> str:
        text = input_from_arguments(arguments)
        if grammar is not None and not matches(grammar, text):
            raise APIError(
                f"The model's input for custom tool '{name}' does not match the tool's "
                f"{grammar.syntax} grammar; the call was not given to the caller. Retry, or "
                "use a model or engine that follows the grammar.",
                code="invalid_tool_input",
                status=502,
            )
        return text

    return CallShape(
        {"type": "custom_tool_call", "name": name, **(extra or {})},
        None,
        for_caller=True,
        input_of=input_of,
        input_events=INPUT_EVENTS,
    )


class CustomTools(CallerTools):
    def __init__(self, tools: list[JSONDict], choice: Any):
        self._tools = {tool["name"]: tool for tool in tools}
        self._shapes = {name: custom_shape(tool) for name, tool in self._tools.items()}
        self._choice = choice

    def chat_tools(self) -> list[JSONDict]:
        return [chat_function(tool) for tool in self._tools.values()]

    def chat_tool_choice(self) -> Any:
        if isinstance(self._choice, NamedToolChoice) and self._choice.name in self._tools:
            return {"type": "function", "function": {"name": self._choice.name}}
        return None

    def shape_of(self, name: str) -> CallShape | None:
        return self._shapes.get(name)


class CustomKind:
    type = "custom"

    def check(self, tool: JSONDict, param: str, settings: ToolSettings) -> None:
        parsed = validated(CustomTool, tool, param)
        if isinstance(parsed.format, GrammarFormat):
            check_grammar(parsed.format, param)

    def echo(self, tool: JSONDict) -> JSONDict:
        echoed: JSONDict = {"type": "custom", "name": tool["name"], "description": None,
                            "format": {"type": "text"}}  # fmt: skip
        echoed.update(tool)
        return echoed

    async def prepare(
        self, tools: list[tuple[int, JSONDict]], context: PrepareContext
    ) -> TurnTools:
        return CustomTools([tool for _, tool in tools], context.tool_choice)
