"""`function` tools: the caller runs them. The model's calls end the turn as
`function_call` items, and their outputs come back in the next turn's input."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from convostack.providers.base import JSONDict
from convostack.responses.models import FunctionTool, FunctionToolChoice
from convostack.responses.output import CallShape
from convostack.responses.tools.base import OpeningItem, PrepareContext, TurnTools
from convostack.responses.tools.settings import ToolSettings
from convostack.validation import to_api_error


class FunctionTools:
    def __init__(self, tools: list[JSONDict], choice: Any):
        self._tools = tools
        self._choice = choice

    def chat_tools(self) -> list[JSONDict]:
        out = []
        for tool in self._tools:
            function: JSONDict = {"name": tool["name"]}
            for key in ("description", "parameters", "strict"):
                if tool.get(key) is not None:
                    function[key] = tool[key]
            out.append({"type": "function", "function": function})
        return out

    def chat_tool_choice(self) -> Any:
        if isinstance(self._choice, FunctionToolChoice):
            return {"type": "function", "function": {"name": self._choice.name}}
        return None

    def opening_items(self) -> list[OpeningItem]:
        return []

    def shape_of(self, name: str) -> CallShape | None:
        return None  # the builder's default: a function_call for the caller

    def unknown_call_shape(self, name: str) -> CallShape | None:
        return None

    def model_texts(self) -> dict[str, str]:
        return {}

    def annotate(self, output: list[JSONDict]) -> None:
        return None

    def breaker_key(self, item: JSONDict) -> str:
        return "function"

    async def run(self, item: JSONDict) -> bool:  # pragma: no cover - never server-run
        raise AssertionError("function calls are run by the caller")

    def refuse(self, item: JSONDict, message: str) -> None:  # pragma: no cover
        raise AssertionError("function calls are run by the caller")

    async def close(self) -> None:
        return None


class FunctionKind:
    type = "function"

    def check(self, tool: JSONDict, param: str, settings: ToolSettings) -> None:
        try:
            FunctionTool.model_validate(tool)
        except ValidationError as exc:
            raise to_api_error(exc, prefix=param) from None

    def echo(self, tool: JSONDict) -> JSONDict:
        echoed = {"type": "function", "name": tool["name"], "description": None,
                  "parameters": None, "strict": None}  # fmt: skip
        echoed.update(tool)
        return echoed

    async def prepare(
        self, tools: list[tuple[int, JSONDict]], context: PrepareContext
    ) -> TurnTools:
        return FunctionTools([tool for _, tool in tools], context.tool_choice)
