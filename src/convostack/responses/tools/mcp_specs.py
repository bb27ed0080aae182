"""MCP tool definitions as requests give them, and the rules they set for one server:
which of its tools are offered, which need the caller's approval."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from convostack.providers.base import JSONDict
from convostack.responses.models import McpToolChoice
from convostack.responses.tools.urls import REDACTED

__all__ = ["McpToolChoice"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolFilter(_Strict):
    tool_names: list[str] | None = None
    read_only: bool | None = None

    def matches(self, tool: JSONDict) -> bool:
        if self.tool_names is not None and tool.get("name") not in self.tool_names:
            return False
        if self.read_only is not None:
            hint = (tool.get("annotations") or {}).get("readOnlyHint")
            return bool(hint) == self.read_only
        return True


class ApprovalFilter(_Strict):
    always: ToolFilter | None = None
    never: ToolFilter | None = None


class McpToolSpec(_Strict):
    type: Literal["mcp"]
    server_label: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    server_url: str | None = Field(None, max_length=2048)
    connector_id: str | None = None
    tunnel_id: str | None = None
    headers: dict[str, str] | None = None
    authorization: str | None = None
    allowed_tools: list[str] | ToolFilter | None = None
    require_approval: Literal["always", "never"] | ApprovalFilter | None = None
    server_description: str | None = None
    defer_loading: bool | None = None
    allowed_callers: list[Literal["direct", "programmatic"]] | None = None


def echo(tool: JSONDict) -> JSONDict:
    """The definition as the Response shows it: secrets replaced, never echoed."""
    echoed: JSONDict = {"type": "mcp", "server_label": tool.get("server_label"),
                        "server_url": None, "allowed_tools": None, "headers": None,
                        "require_approval": None, "server_description": None}  # fmt: skip
    echoed.update(tool)
    if tool.get("headers"):
        echoed["headers"] = dict.fromkeys(tool["headers"], REDACTED)
    if tool.get("authorization"):
        echoed["authorization"] = REDACTED
    return echoed


@dataclass
class McpServer:
    """One MCP server as this turn may use it."""

    label: str
    url: str
    headers: dict[str, str]
    allowed: list[str] | ToolFilter | None
    approval: Literal["always", "never"] | ApprovalFilter | None
    description: str | None

    def allows(self, tool: JSONDict) -> bool:
        if self.allowed is None:
            return True
        if isinstance(self.allowed, list):
            return tool.get("name") in self.allowed
        return self.allowed.matches(tool)

    def needs_approval(self, tool: JSONDict) -> bool:
        # Absent means "always", as at OpenAI: a server acts only when the caller says so.
        if self.approval is None or isinstance(self.approval, str):
            return self.approval != "never"
        never = self.approval.never
        return never is None or not never.matches(tool)


_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_-]")


def function_name(name: str, label: str | None = None) -> str:
    """A name chat models accept (letters, digits, `_`, `-`, at most 64), prefixed with
    the server's label when it must be told apart from another tool's."""
    base = _NAME_CHARACTERS.sub("_", name)
    return (f"{label}__{base}" if label else base)[:64]


def listed_tool(tool: Any) -> JSONDict:
    """An `mcp_list_tools` entry from the SDK's Tool."""
    entry: JSONDict = {"name": tool.name, "input_schema": tool.input_schema or {}}
    if tool.description is not None:
        entry["description"] = tool.description
    if tool.annotations is not None:
        entry["annotations"] = tool.annotations.model_dump(by_alias=True, exclude_none=True)
    return entry
