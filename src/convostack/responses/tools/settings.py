"""Settings of server-side tools: the loop's bounds and the MCP servers an operator
configures. Each is a `Config` field (config file, `CONVOSTACK_<NAME>`, flags)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_MAX_TOOL_ITERATIONS = 16
DEFAULT_TOOL_CALL_TIMEOUT_SECONDS = 60.0
DEFAULT_TOOL_CONNECT_TIMEOUT_SECONDS = 10.0
DEFAULT_TOOL_BREAKER_FAILURES = 3
DEFAULT_MCP_SESSION_IDLE_SECONDS = 60.0

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: str, where: str) -> str:
    """`${NAME}` replaced by the environment's NAME; a missing one stops the server at
    start (so a secret is never sent as the literal text `${NAME}`)."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        found = os.environ.get(name)
        if found is None:
            raise ValueError(f"{where} names ${{{name}}}, which is not set in the environment")
        return found

    return _ENV_REFERENCE.sub(lookup, value)


class McpServerConfig(BaseModel):
    """An MCP server the operator configures; callers name it by `server_label` alone."""

    model_config = ConfigDict(extra="forbid")

    server_label: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The label callers name it by."
    )
    server_url: str = Field(description="Its streamable HTTP (or SSE) URL.")
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="HTTP headers sent to it; `${NAME}` takes NAME from the environment, so "
        "secrets stay out of the file.",
    )
    allowed_tools: list[str] | None = Field(
        None, description="Only these of its tools are offered (default: all)."
    )
    require_approval: Literal["always", "never"] | None = Field(
        None,
        description="Default approval policy when a request does not say (default: always, "
        "as at OpenAI).",
    )
    server_description: str | None = Field(None, description="Shown to the model.")

    @field_validator("headers")
    @classmethod
    def _expand(cls, headers: dict[str, str]) -> dict[str, str]:
        return {k: expand_env(v, f"mcp_servers header {k!r}") for k, v in headers.items()}


@dataclass(frozen=True, slots=True)
class ToolSettings:
    """What the tool loop and the MCP tool kind need from the configuration."""

    max_tool_iterations: int = DEFAULT_MAX_TOOL_ITERATIONS
    tool_call_timeout_seconds: float = DEFAULT_TOOL_CALL_TIMEOUT_SECONDS
    tool_connect_timeout_seconds: float = DEFAULT_TOOL_CONNECT_TIMEOUT_SECONDS
    tool_breaker_failures: int = DEFAULT_TOOL_BREAKER_FAILURES
    max_tool_output_chars: int = 1_048_576
    mcp_session_idle_seconds: float = DEFAULT_MCP_SESSION_IDLE_SECONDS
    mcp_servers: dict[str, McpServerConfig] = field(default_factory=dict)
    mcp_allow_private_urls: bool = False
    mcp_url_allowlist: tuple[str, ...] = ()
    # The server's own addresses (host, port), never a target unless allow-listed.
    own_addresses: tuple[tuple[str, int], ...] = ()

    def describe(self) -> dict[str, Any]:  # for logs: labels only, never headers
        return {"mcp_servers": sorted(self.mcp_servers)}
