"""Tools in Responses: the kinds a request may use, registered by `type`, and the box
that holds one turn's prepared tools for the loop (`loop.py`)."""

from __future__ import annotations

from typing import Any

from convostack.errors import InvalidRequestError
from convostack.limits import Limits
from convostack.providers.base import JSONDict
from convostack.responses.output import CallShape
from convostack.responses.tools.base import OpeningItem, PrepareContext, ToolKind, TurnTools
from convostack.responses.tools.file_search import FileSearchKind
from convostack.responses.tools.function import FunctionKind
from convostack.responses.tools.mcp import McpKind
from convostack.responses.tools.settings import ToolSettings

# A new kind is one class and one line here.
KINDS: dict[str, ToolKind] = {
    kind.type: kind for kind in (FunctionKind(), McpKind(), FileSearchKind())
}


def _kind(tool: Any, param: str) -> ToolKind:
    kind_name = tool.get("type") if isinstance(tool, dict) else None
    kind = KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        raise InvalidRequestError(
            f"Tool type '{kind_name}' is not supported by this server; these are: "
            f"{', '.join(sorted(KINDS))}.",
            code="unsupported_value",
            param=f"{param}.type",
        )
    return kind


def check_tools(tools: list[Any], limits: Limits, settings: ToolSettings) -> None:
    """Each definition's shape, before anything else happens (a 400 names the field)."""
    limits.check_tool_count(len(tools))
    for n, tool in enumerate(tools):
        _kind(tool, f"tools[{n}]").check(tool, f"tools[{n}]", settings)


def echo_tools(tools: list[Any]) -> list[JSONDict]:
    return [KINDS[tool["type"]].echo(tool) for tool in tools]


class ToolBox:
    """One turn's tools, every kind's together, as the loop sees them."""

    def __init__(self, parts: list[TurnTools], has_functions: bool):
        self._parts = parts
        self._has_functions = has_functions

    @classmethod
    async def prepare(cls, tools: list[JSONDict], context: PrepareContext) -> ToolBox:
        by_kind: dict[str, list[tuple[int, JSONDict]]] = {}
        for n, tool in enumerate(tools):
            by_kind.setdefault(tool["type"], []).append((n, tool))
        context.client_names = {t["name"] for _, t in by_kind.get("function", [])}
        parts: list[TurnTools] = []
        try:
            for kind_name, definitions in by_kind.items():
                parts.append(await KINDS[kind_name].prepare(definitions, context))
        except BaseException:
            await cls(parts, False).close()
            raise
        return cls(parts, "function" in by_kind)

    def chat_tools(self) -> list[JSONDict]:
        return [entry for part in self._parts for entry in part.chat_tools()]

    def chat_tool_choice(self, fallback: Any) -> Any:
        for part in self._parts:
            choice = part.chat_tool_choice()
            if choice is not None:
                return choice
        return fallback

    def opening_items(self) -> list[tuple[OpeningItem, TurnTools]]:
        return [(item, part) for part in self._parts for item in part.opening_items()]

    def shape_of(self, name: str) -> CallShape | None:
        for part in self._parts:
            shape = part.shape_of(name)
            if shape is not None:
                return shape
        if not self._has_functions:
            for part in self._parts:
                shape = part.unknown_call_shape(name)
                if shape is not None:
                    return shape
        return None

    def model_texts(self) -> dict[str, str]:
        return {key: text for part in self._parts for key, text in part.model_texts().items()}

    def annotate(self, output: list[JSONDict]) -> None:
        for part in self._parts:
            part.annotate(output)

    async def close(self) -> None:
        for part in self._parts:
            await part.close()
