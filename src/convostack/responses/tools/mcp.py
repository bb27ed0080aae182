"""`mcp` tools: the server lists an MCP server's tools, offers them to the model, runs
the calls it makes (after the caller's approval where required) and feeds the results
back, all inside one turn.

The tool list is fetched once per server per conversation (or chain): a turn that finds
an `mcp_list_tools` item for the label in its history reuses it, so a server is not
listed again every turn. Secrets (`headers`, `authorization`) go to the MCP server only:
never into an item, a log line or an error message.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from convostack.errors import FailedDependencyError, InvalidRequestError
from convostack.ids import new_item_id
from convostack.providers.base import JSONDict
from convostack.responses.output import CallShape
from convostack.responses.tools.base import Item, OpeningItem, PrepareContext, TurnTools
from convostack.responses.tools.function import validated
from convostack.responses.tools.mcp_connection import McpConnection, McpFailure
from convostack.responses.tools.mcp_specs import (
    McpServer,
    McpToolChoice,
    McpToolSpec,
    echo,
    function_name,
    listed_tool,
)
from convostack.responses.tools.settings import ToolSettings
from convostack.responses.tools.urls import check_server_url, scrub, secret_values

INVALID_PARAMS = -32602  # JSON-RPC: the arguments are not what the tool takes


def _call_shape(server: McpServer, name: str, runner: TurnTools) -> CallShape:
    item = {"type": "mcp_call", "server_label": server.label, "name": name,
            "status": "in_progress", "output": None, "error": None}  # fmt: skip
    return CallShape(
        item,
        "response.mcp_call_arguments",
        started_event="response.mcp_call.in_progress",
        completed_event="response.mcp_call.completed",
        failed_event="response.mcp_call.failed",
        runs_on_server=True,
        runner=runner,
    )


def _approval_shape(server: McpServer, name: str) -> CallShape:
    return CallShape(
        {"type": "mcp_approval_request", "server_label": server.label, "name": name}, None
    )


class McpTools:
    """The MCP servers of one turn: their offered tools, and sessions opened on first use."""

    def __init__(self, context: PrepareContext):
        self._settings = context.settings
        self._choice = context.tool_choice
        self._owner = context.owner
        self._pool = context.sessions
        self._servers: dict[str, McpServer] = {}
        self._tools: dict[str, tuple[McpServer, JSONDict]] = {}  # by the model's name
        self._opening: list[OpeningItem] = []
        self._sessions: dict[str, McpConnection] = {}
        self._fallback: McpServer | None = None  # owns calls of tools no one offers

    # -- preparing -------------------------------------------------------------------------

    async def add_server(self, server: McpServer, param: str, context: PrepareContext) -> None:
        if server.label in self._servers:
            raise InvalidRequestError(
                f"Duplicate MCP server_label '{server.label}': each MCP tool needs its own.",
                code="invalid_value", param=f"{param}.server_label",
            )  # fmt: skip
        self._servers[server.label] = server
        self._fallback = self._fallback or server
        listed = _listed_before(context.history, server.label)
        if listed is None:
            listed = await self._list(server)
        for tool in listed["tools"]:
            if server.allows(tool):
                self._offer(server, tool, context.client_names)

    async def _list(self, server: McpServer) -> JSONDict:
        session = self._session(server)
        try:
            tools = await session.list_tools(self._settings.tool_call_timeout_seconds)
        except McpFailure as failure:
            raise FailedDependencyError(
                f"Error retrieving tool list from MCP server: '{server.label}'. "
                f"{failure.message}",
                code=failure.kind, param="tools",
            ) from None  # fmt: skip
        item = {"id": new_item_id("mcp_list_tools"), "type": "mcp_list_tools",
                "server_label": server.label, "tools": [listed_tool(t) for t in tools],
                "error": None}  # fmt: skip
        self._opening.append(OpeningItem(item, progress="response.mcp_list_tools"))
        return item

    def _offer(self, server: McpServer, tool: JSONDict, taken: set[str]) -> None:
        name = function_name(tool["name"])
        if name in taken or name in self._tools:
            name = function_name(tool["name"], server.label)
        self._tools[name] = (server, tool)

    def approve(self, context: PrepareContext) -> None:
        """Calls approved (or denied) in this turn's input, checked against the history."""
        requests = {i["id"]: i for i in context.history if i.get("type") == "mcp_approval_request"}
        answered = {i.get("approval_request_id") for i in context.history
                    if i.get("type") == "mcp_approval_response"}  # fmt: skip
        for n, item in enumerate(context.new_input):
            if item.get("type") != "mcp_approval_response":
                continue
            param = f"input[{n}].approval_request_id"
            request_id = item.get("approval_request_id")
            request = requests.get(request_id or "")
            if request is None:
                raise InvalidRequestError(
                    f"No MCP approval request with id '{request_id}' in this conversation "
                    "or response chain.", code="invalid_value", param=param,
                )  # fmt: skip
            if request_id in answered:
                raise InvalidRequestError(
                    f"The MCP approval request '{request_id}' was already answered.",
                    code="invalid_value", param=param,
                )  # fmt: skip
            answered.add(request_id)
            server = self._servers.get(request["server_label"])
            if server is None:
                raise InvalidRequestError(
                    f"The approval request '{request_id}' is for the MCP server "
                    f"'{request['server_label']}', which is not in 'tools'.",
                    code="invalid_value", param=param,
                )  # fmt: skip
            if item.get("approve"):
                shape = _call_shape(server, request["name"], self)
                call = {"id": new_item_id("mcp_call"), **shape.item,
                        "arguments": request.get("arguments", ""),
                        "approval_request_id": request_id}  # fmt: skip
                self._opening.append(OpeningItem(call, shape))

    # -- the turn's view -------------------------------------------------------------------

    def chat_tools(self) -> list[JSONDict]:
        out = []
        for name, (server, tool) in self._tools.items():
            function: JSONDict = {"name": name, "parameters": tool.get("input_schema") or {}}
            description = tool.get("description") or ""
            if server.description:
                description = f"{description} (MCP server {server.label}: {server.description})"
            if description:
                function["description"] = description.strip()
            out.append({"type": "function", "function": function})
        return out

    def chat_tool_choice(self) -> Any:
        choice = self._choice
        if not isinstance(choice, McpToolChoice):
            return None
        if choice.name is None:
            return "required"
        for name, (server, tool) in self._tools.items():
            if server.label == choice.server_label and tool["name"] == choice.name:
                return {"type": "function", "function": {"name": name}}
        raise AssertionError("checked when prepared")

    def check_choice(self) -> None:
        choice = self._choice
        if not isinstance(choice, McpToolChoice):
            return
        if choice.server_label not in self._servers:
            raise InvalidRequestError(
                f"Tool choice names the MCP server '{choice.server_label}', which is not in "
                "'tools'.", code="invalid_value", param="tool_choice",
            )  # fmt: skip
        names = {t["name"] for s, t in self._tools.values() if s.label == choice.server_label}
        if choice.name is not None and choice.name not in names:
            raise InvalidRequestError(
                f"Tool choice names the tool '{choice.name}', which the MCP server "
                f"'{choice.server_label}' does not offer (allowed: {sorted(names)}).",
                code="invalid_value", param="tool_choice",
            )  # fmt: skip

    def opening_items(self) -> list[OpeningItem]:
        return self._opening

    def shape_of(self, name: str) -> CallShape | None:
        found = self._tools.get(name)
        if found is None:
            return None
        server, tool = found
        if server.needs_approval(tool):
            return _approval_shape(server, tool["name"])
        return _call_shape(server, tool["name"], self)

    def unknown_call_shape(self, name: str) -> CallShape | None:
        """A call of a tool no one offered, when there are no function tools to own it:
        shown as a failed MCP call, so the model learns the tool does not exist."""
        return None if self._fallback is None else _call_shape(self._fallback, name, self)

    def model_texts(self) -> dict[str, str]:
        return {}

    def citations(self, text: str) -> list[JSONDict]:
        return []

    def breaker_key(self, item: JSONDict) -> str:
        return f"mcp:{item['server_label']}"

    # -- running ---------------------------------------------------------------------------

    async def run(self, item: JSONDict) -> bool:
        server = self._servers[item["server_label"]]
        offered = any(s is server and t["name"] == item["name"] for s, t in self._tools.values())
        if not offered:
            return _failed(item, {"type": "mcp_protocol_error", "code": INVALID_PARAMS,
                                  "message": f"Tool '{item['name']}' is not available on MCP "
                                             f"server '{server.label}'."})  # fmt: skip
        try:
            arguments = orjson.loads(item["arguments"] or "{}")
        except orjson.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            return _failed(item, {"type": "mcp_protocol_error", "code": INVALID_PARAMS,
                                  "message": "The arguments are not a JSON object."})  # fmt: skip
        try:
            result = await self._session(server).call_tool(
                item["name"], arguments, self._settings.tool_call_timeout_seconds
            )
        except McpFailure as failure:
            return _failed(item, failure.error())
        # A server that echoes what it was sent must not put our secrets into an item.
        secrets = secret_values(server.headers)
        content = [_scrubbed(block.model_dump(by_alias=True, exclude_none=True), secrets)
                   for block in result.content]  # fmt: skip
        if result.is_error:
            return _failed(item, {"type": "mcp_tool_execution_error", "content": content})
        output = scrub(_output_text(content, result.structured_content), secrets)
        limit = self._settings.max_tool_output_chars
        if len(output) > limit:
            return _failed(item, {"type": "mcp_protocol_error", "code": INVALID_PARAMS,
                                  "message": f"The tool's output holds {len(output)} characters, "
                                             f"more than the {limit} allowed (setting "
                                             "max_tool_output_chars)."})  # fmt: skip
        item.update(status="completed", output=output, error=None)
        return True

    def refuse(self, item: JSONDict, message: str) -> None:
        _failed(item, {"type": "mcp_protocol_error", "code": -32000, "message": message})

    def _session(self, server: McpServer) -> McpConnection:
        session = self._sessions.get(server.label)
        if session is None:
            session = self._pool.take(self._owner, server.url, server.headers)
            self._sessions[server.label] = session
        return session

    async def close(self) -> None:
        """Give the turn's sessions back to the pool (idempotent)."""
        sessions, self._sessions = self._sessions, {}
        await asyncio.gather(
            *(self._pool.give_back(self._owner, session, self._servers[label].headers)
              for label, session in sessions.items())
        )  # fmt: skip


def _failed(item: JSONDict, error: JSONDict) -> bool:
    item.update(status="failed", error=error)
    return False


def _scrubbed(block: JSONDict, secrets: list[str]) -> JSONDict:
    if isinstance(block.get("text"), str):
        return {**block, "text": scrub(block["text"], secrets)}
    return block


def _output_text(content: list[JSONDict], structured: Any) -> str:
    texts = [b.get("text", "") for b in content if b.get("type") == "text"]
    if texts:
        return "\n".join(texts)
    if structured is not None:
        return orjson.dumps(structured).decode()
    return orjson.dumps(content).decode() if content else ""


def _listed_before(history: list[Item], label: str) -> JSONDict | None:
    for item in reversed(history):
        listed = item.get("type") == "mcp_list_tools" and item.get("server_label") == label
        if listed and not item.get("error"):
            return item
    return None


class McpKind:
    type = "mcp"

    def check(self, tool: JSONDict, param: str, settings: ToolSettings) -> None:
        spec = validated(McpToolSpec, tool, param)
        for unsupported in ("connector_id", "tunnel_id"):
            if getattr(spec, unsupported) is not None:
                raise InvalidRequestError(
                    f"'{unsupported}' is not supported by this server: give the MCP server's "
                    "'server_url'.", code="unsupported_value", param=f"{param}.{unsupported}",
                )  # fmt: skip
        configured = settings.mcp_servers.get(spec.server_label)
        if configured is not None and spec.server_url is not None:
            raise InvalidRequestError(
                f"The MCP server '{spec.server_label}' is configured on this server; leave "
                "'server_url' out to use it, or choose another label.",
                code="invalid_value", param=f"{param}.server_url",
            )  # fmt: skip
        if configured is None and spec.server_url is None:
            raise InvalidRequestError(
                f"Missing required parameter: '{param}.server_url' (no MCP server labelled "
                f"'{spec.server_label}' is configured on this server).",
                code="missing_required_parameter", param=f"{param}.server_url",
            )  # fmt: skip

    def echo(self, tool: JSONDict) -> JSONDict:
        return echo(tool)

    async def prepare(
        self, tools: list[tuple[int, JSONDict]], context: PrepareContext
    ) -> TurnTools:
        settings = context.settings
        turn = McpTools(context)
        try:
            for index, tool in tools:
                spec = McpToolSpec.model_validate(tool)
                param = f"tools[{index}]"
                server = await _server(spec, param, settings)
                await turn.add_server(server, param, context)
            turn.check_choice()
            turn.approve(context)
        except BaseException:
            await turn.close()
            raise
        return turn


async def _server(spec: McpToolSpec, param: str, settings: ToolSettings) -> McpServer:
    configured = settings.mcp_servers.get(spec.server_label)
    headers = dict(configured.headers if configured else {})
    headers.update(spec.headers or {})
    if spec.authorization:
        headers["Authorization"] = f"Bearer {spec.authorization}"
    if configured is not None:
        url = configured.server_url
        allowed: Any = spec.allowed_tools or configured.allowed_tools
        approval: Any = spec.require_approval or configured.require_approval
        description = spec.server_description or configured.server_description
    else:
        url = spec.server_url or ""
        await check_server_url(url, f"{param}.server_url", settings)
        allowed, approval, description = (
            spec.allowed_tools,
            spec.require_approval,
            spec.server_description,
        )
    return McpServer(spec.server_label, url, headers, allowed, approval, description)
