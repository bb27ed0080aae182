"""Tools in Responses: the kinds a request may use, registered by `type`, and the box
that holds one turn's prepared tools for the loop (`loop.py`)."""

from __future__ import annotations

from typing import Any

from convostack.errors import InvalidRequestError
from convostack.limits import Limits
from convostack.providers.base import JSONDict
from convostack.responses.output import CallShape
from convostack.responses.tools.base import OpeningItem, PrepareContext, ToolKind, TurnTools
from convostack.responses.tools.custom import CustomKind
from convostack.responses.tools.file_search import FileSearchKind
from convostack.responses.tools.function import FunctionKind
from convostack.responses.tools.mcp import McpKind
from convostack.responses.tools.namespace import NamespaceKind, offered_names
from convostack.responses.tools.settings import ToolSettings

# A new kind is one class and one line here.
KINDS: dict[str, ToolKind] = {
    kind.type: kind
    for kind in (FunctionKind(), McpKind(), CustomKind(), NamespaceKind(), FileSearchKind())
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
    seen: set[str] = set()
    for name, param in offered_names(tools):  # one flat list of functions for the model
        if name in seen:
            raise InvalidRequestError(
                f"Invalid '{param}': the model would see two tools named '{name}' "
                "(a namespace's tool is offered as '<namespace>__<name>').",
                code="invalid_value",
                param=param,
            )
        seen.add(name)


def echo_tools(tools: list[Any]) -> list[JSONDict]:
    return [KINDS[tool["type"]].echo(tool) for tool in tools]


class ToolBox:
    """One turn's tools, every kind's together, as the loop sees them."""

    def __init__(self, parts: list[TurnTools], has_functions: bool):
        self._parts = parts
        self._has_functions = has_functions
        self._allowed: set[str] | None = None  # a tool_choice of allowed_tools

    @classmethod
    async def prepare(cls, tools: list[JSONDict], context: PrepareContext) -> ToolBox:
        by_kind: dict[str, list[tuple[int, JSONDict]]] = {}
        for n, tool in enumerate(tools):
            by_kind.setdefault(tool["type"], []).append((n, tool))
        # What the model sees of the caller's tools (functions, custom, namespaced):
        # an MCP tool of the same name is renamed around them.
        context.client_names = {name for name, _ in offered_names(tools)}
        parts: list[TurnTools] = []
        try:
            for kind_name, definitions in by_kind.items():
                parts.append(await KINDS[kind_name].prepare(definitions, context))
        except BaseException:
            await cls(parts, False).close()
            raise
        return cls(parts, "function" in by_kind)

    def chat_tools(self) -> list[JSONDict]:
        offered = [entry for part in self._parts for entry in part.chat_tools()]
        if self._allowed is None:
            return offered
        return [entry for entry in offered if entry["function"]["name"] in self._allowed]

    def restrict(self, entries: list[JSONDict]) -> None:
        """Offer only the tools that `tool_choice: {type: allowed_tools}` names: functions
        by `name`, an MCP server by `server_label` (and `name`), built-ins by `type`."""
        names = [entry["function"]["name"] for part in self._parts for entry in part.chat_tools()]
        allowed: set[str] = set()
        for n, entry in enumerate(entries):
            matched = {name for name in names if self._matches(name, entry)}
            if not matched:
                raise InvalidRequestError(
                    f"Invalid 'tool_choice.tools[{n}]': it names no tool in 'tools'.",
                    code="invalid_value",
                    param=f"tool_choice.tools[{n}]",
                )
            allowed |= matched
        self._allowed = allowed

    def _matches(self, name: str, entry: JSONDict) -> bool:
        shape = self.shape_of(name)
        item = shape.item if shape is not None else {"type": "function_call", "name": name}
        kind = entry.get("type")
        if kind == "namespace":
            return item.get("namespace") == entry.get("name")
        call_type = "custom_tool_call" if kind == "custom" else f"{kind}_call"
        if item.get("type") != call_type and not (kind == "mcp" and "server_label" in item):
            return False
        keys = ("name", "server_label", "namespace")
        return all(item.get(key) == entry[key] for key in keys if key in entry)

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

    def citations(self, text: str) -> list[JSONDict]:
        return [c for part in self._parts for c in part.citations(text)]

    async def close(self) -> None:
        for part in self._parts:
            await part.close()
