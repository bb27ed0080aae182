"""`function` tools: the caller runs them. The model's calls end the turn as
`function_call` items, and their outputs come back in the next turn's input."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from convostack.providers.base import JSONDict
from convostack.responses.models import FunctionTool, FunctionToolChoice
from convostack.responses.output import CallShape
from convostack.responses.tools.base import OpeningItem, PrepareContext, TurnTools
from convostack.responses.tools.settings import ToolSettings
from convostack.validation import to_api_error

M = TypeVar("M", bound=BaseModel)


def chat_entry(tool: JSONDict) -> JSONDict:
    """The Chat Completions `tools` entry of a function tool."""
    function: JSONDict = {"name": tool["name"]}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


class CallerTools:
    """What every kind of tools the caller runs has in common: nothing opens the output,
    nothing runs on the server. Subclasses say what is offered and how calls look."""

    def opening_items(self) -> list[OpeningItem]:
        return []

    def shape_of(self, name: str) -> CallShape | None:
        return None  # the builder's default: a function_call for the caller

    def unknown_call_shape(self, name: str) -> CallShape | None:
        return None

    def model_texts(self) -> dict[str, str]:
        return {}

    def citations(self, text: str) -> list[JSONDict]:
        return []

    def breaker_key(self, item: JSONDict) -> str:
        return "caller"

    async def run(self, item: JSONDict) -> bool:  # pragma: no cover - never server-run
        raise AssertionError("the caller runs these calls")

    def refuse(self, item: JSONDict, message: str) -> None:  # pragma: no cover
        raise AssertionError("the caller runs these calls")

    async def close(self) -> None:
        return None


def validated(model: type[M], tool: JSONDict, param: str) -> M:
    """A tool definition as `model`, or the 400 naming its bad field under `param`."""
    try:
        return model.model_validate(tool)
    except ValidationError as exc:
        raise to_api_error(exc, prefix=param) from None


class FunctionTools(CallerTools):
    def __init__(self, tools: list[JSONDict], choice: Any):
        self._tools = tools
        self._choice = choice

    def chat_tools(self) -> list[JSONDict]:
        return [chat_entry(tool) for tool in self._tools]

    def chat_tool_choice(self) -> Any:
        if isinstance(self._choice, FunctionToolChoice) and not self._choice.namespace:
            return {"type": "function", "function": {"name": self._choice.name}}
        return None


class FunctionKind:
    type = "function"

    def check(self, tool: JSONDict, param: str, settings: ToolSettings) -> None:
        validated(FunctionTool, tool, param)

    def echo(self, tool: JSONDict) -> JSONDict:
        echoed = {"type": "function", "name": tool["name"], "description": None,
                  "parameters": None, "strict": None}  # fmt: skip
        echoed.update(tool)
        return echoed

    async def prepare(
        self, tools: list[tuple[int, JSONDict]], context: PrepareContext
    ) -> TurnTools:
        return FunctionTools([tool for _, tool in tools], context.tool_choice)
