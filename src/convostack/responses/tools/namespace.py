"""`namespace` tools: function and custom tools grouped under a name (`crm`).

A chat model has one flat list of functions, so each tool of a namespace is offered as
`<namespace>__<name>` (`crm__get_customer`), a name that must not clash with any other
tool's; the model's call is shown as the caller expects it, `name: "get_customer"` with
`namespace: "crm"`, and a call sent back in the input is flattened again (`context.py`),
so the flat name is never seen outside the model's request.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from convostack.errors import invalid_value
from convostack.providers.base import JSONDict
from convostack.responses.models import FunctionToolChoice, NamedToolChoice
from convostack.responses.output import CallShape
from convostack.responses.tools.base import PrepareContext, ToolKind, TurnTools
from convostack.responses.tools.custom import CustomKind, chat_function, custom_shape
from convostack.responses.tools.function import CallerTools, FunctionKind, chat_entry, validated
from convostack.responses.tools.settings import ToolSettings

SEPARATOR = "__"


def flat_name(namespace: str, name: str) -> str:
    return f"{namespace}{SEPARATOR}{name}"


class NamespaceTool(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["namespace"]
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str
    tools: list[dict[str, Any]] = Field(min_length=1)


_INNER: dict[str, ToolKind] = {"function": FunctionKind(), "custom": CustomKind()}


class NamespaceTools(CallerTools):
    def __init__(self, namespaces: list[JSONDict], choice: Any):
        self._choice = choice
        self._entries: list[JSONDict] = []
        self._shapes: dict[str, CallShape] = {}
        for namespace in namespaces:
            ns = namespace["name"]
            for tool in namespace["tools"]:
                flat = flat_name(ns, tool["name"])
                if tool["type"] == "custom":
                    self._entries.append(chat_function(tool, flat))
                    self._shapes[flat] = custom_shape(tool, {"namespace": ns})
                else:
                    self._entries.append(chat_entry({**tool, "name": flat}))
                    self._shapes[flat] = CallShape(
                        {"type": "function_call", "status": "in_progress", "name": tool["name"],
                         "namespace": ns},
                        "response.function_call_arguments",
                        for_caller=True,
                    )  # fmt: skip

    def chat_tools(self) -> list[JSONDict]:
        return self._entries

    def chat_tool_choice(self) -> Any:
        choice = self._choice
        namespace = getattr(choice, "namespace", None)
        if isinstance(choice, FunctionToolChoice | NamedToolChoice) and namespace:
            return {"type": "function", "function": {"name": flat_name(namespace, choice.name)}}
        return None

    def shape_of(self, name: str) -> CallShape | None:
        return self._shapes.get(name)


class NamespaceKind:
    type = "namespace"

    def check(self, tool: JSONDict, param: str, settings: ToolSettings) -> None:
        validated(NamespaceTool, tool, param)
        seen: set[str] = set()
        for n, inner in enumerate(tool["tools"]):
            where = f"{param}.tools[{n}]"
            kind = _INNER.get(str(inner.get("type"))) if isinstance(inner, dict) else None
            if kind is None:
                raise invalid_value(
                    f"{where}.type",
                    f"Invalid '{where}.type': a namespace holds 'function' and 'custom' tools.",
                )
            kind.check(inner, where, settings)
            if inner["name"] in seen:
                raise invalid_value(
                    f"{where}.name",
                    f"Invalid '{where}.name': '{inner['name']}' is already in namespace "
                    f"'{tool['name']}'.",
                )
            seen.add(inner["name"])

    def echo(self, tool: JSONDict) -> JSONDict:
        return {**tool, "tools": [_INNER[t["type"]].echo(t) for t in tool["tools"]]}

    async def prepare(
        self, tools: list[tuple[int, JSONDict]], context: PrepareContext
    ) -> TurnTools:
        return NamespaceTools([tool for _, tool in tools], context.tool_choice)


def offered_names(tools: list[JSONDict]) -> list[tuple[str, str]]:
    """(the name the model sees, where it is defined) of every function-like tool."""
    names: list[tuple[str, str]] = []
    for n, tool in enumerate(tools):
        if tool["type"] in ("function", "custom"):
            names.append((tool["name"], f"tools[{n}].name"))
        elif tool["type"] == "namespace":
            names += [(flat_name(tool["name"], inner["name"]), f"tools[{n}].tools[{m}].name")
                      for m, inner in enumerate(tool["tools"])]  # fmt: skip
    return names
