"""One session with one MCP server, through the official `mcp` SDK: streamable HTTP,
falling back to HTTP+SSE for servers that only speak the older transport.

The SDK's client holds anyio task groups, which must be entered and left by one task.
A turn's event generator may be closed from another task (a client that goes away), so
each session is entered and left by a task of its own, and the turn only sends it
requests: closing is then safe from anywhere, and never leaks the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolRequest, CallToolRequestParams, CallToolResult, Tool
from mcp.types.jsonrpc import HEADER_MISMATCH

from convostack.responses.tools.urls import scrub, secret_values, without_userinfo

log = logging.getLogger(__name__)

TIMEOUT_CODE = -32001  # JSON-RPC's "request timed out", as MCP clients report it
_MAX_MESSAGE = 500
IDLE_SECONDS = 3600.0  # a session is closed after this long whatever happens


@dataclass
class McpFailure(Exception):
    """A session or a call that failed: the shape of the `error` OpenAI gives an item."""

    kind: str  # "http_error" or "mcp_protocol_error"
    code: int
    message: str

    def error(self) -> dict[str, Any]:
        return {"type": self.kind, "code": self.code, "message": self.message}


class McpConnection:
    def __init__(self, url: str, headers: dict[str, str], connect_timeout: float):
        self.url = url
        self._headers = headers
        self._secrets = secret_values(headers)
        self._connect_timeout = connect_timeout
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[Client] | None = None
        self._stop = asyncio.Event()

    async def list_tools(self, seconds: float) -> list[Tool]:
        client = await self._open()
        tools: list[Tool] = []
        cursor: str | None = None
        async with self._failures(seconds):
            while True:
                page = await client.list_tools(cursor=cursor)
                tools += page.tools
                cursor = page.next_cursor
                if not cursor:
                    return tools

    async def call_tool(
        self, name: str, arguments: dict[str, Any], seconds: float
    ) -> CallToolResult:
        client = await self._open()
        async with self._failures(seconds):
            try:
                # The request itself, not `Client.call_tool`: that lists the server's tools
                # again in every new session (to check structured output we do not use),
                # and the conversation already holds the list.
                request = CallToolRequest(
                    params=CallToolRequestParams(name=name, arguments=arguments)
                )
                return await client.session.send_request(request, CallToolResult)
            except MCPError as exc:
                if exc.error.code != HEADER_MISMATCH:
                    raise
                # A modern server that wants headers derived from the tool's schema: the
                # SDK's own call lists the tools and sends them.
                return await client.call_tool(name, arguments)

    async def close(self) -> None:
        self._stop.set()
        if self._task is None:
            return
        if self._ready is not None and not self._ready.done():
            self._task.cancel()  # still connecting: nothing to leave cleanly
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(self._task, self._connect_timeout)

    # -- the session's own task ---------------------------------------------------------

    async def _open(self) -> Client:
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._hold(self._ready))
        try:
            async with asyncio.timeout(self._connect_timeout):
                return await asyncio.shield(self._ready)
        except TimeoutError:
            raise McpFailure(
                "http_error", 0,
                f"Could not connect to the MCP server at {self._shown_url()} within "
                f"{self._connect_timeout:g} s (setting tool_connect_timeout_seconds).",
            ) from None  # fmt: skip

    async def _hold(self, ready: asyncio.Future[Client]) -> None:
        """Enter a session (streamable HTTP, else SSE), serve until closed, leave it."""
        failure: McpFailure | None = None
        for transport in (self._streamable, self._sse):
            try:
                async with transport() as client:
                    if not ready.done():
                        ready.set_result(client)
                    # A turn closes its sessions; one that never ran (its client left
                    # before the stream started) must not keep a session open for ever.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), IDLE_SECONDS)
                    return
            except Exception as exc:  # any transport error: try the next, then report
                if ready.done():
                    log.info("MCP session with %s ended: %s", self._shown_url(), type(exc).__name__)
                    return
                failure = failure or self._failure(exc)
        if not ready.done() and failure is not None:
            ready.set_exception(failure)

    @contextlib.asynccontextmanager
    async def _streamable(self) -> AsyncIterator[Client]:
        async with (
            httpx2.AsyncClient(headers=self._headers, timeout=self._http_timeout()) as http,
            Client(streamable_http_client(self.url, http_client=http)) as client,
        ):
            yield client

    @contextlib.asynccontextmanager
    async def _sse(self) -> AsyncIterator[Client]:
        transport = sse_client(self.url, headers=self._headers, timeout=self._connect_timeout)
        async with Client(transport) as client:
            yield client

    def _http_timeout(self) -> httpx2.Timeout:
        # Reads wait as long as a call may take; the call's own timeout bounds it.
        return httpx2.Timeout(self._connect_timeout, read=None)

    # -- errors ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _failures(self, seconds: float) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(seconds):
                yield
        except TimeoutError:
            raise McpFailure(
                "mcp_protocol_error", TIMEOUT_CODE,
                f"The MCP server did not answer within {seconds:g} s (setting "
                "tool_call_timeout_seconds).",
            ) from None  # fmt: skip
        except McpFailure:
            raise
        except Exception as exc:
            raise self._failure(exc) from None

    def _failure(self, exc: BaseException) -> McpFailure:
        if isinstance(exc, McpFailure):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            return self._failure(exc.exceptions[0])
        if isinstance(exc, MCPError):
            return McpFailure("mcp_protocol_error", exc.error.code, self._text(exc.error.message))
        if isinstance(exc, httpx2.HTTPStatusError):
            status = exc.response.status_code
            return McpFailure(
                "http_error", status,
                f"The MCP server at {self._shown_url()} answered HTTP {status}.",
            )  # fmt: skip
        if isinstance(exc, httpx2.TransportError | OSError):
            return McpFailure(
                "http_error", 0,
                f"Could not reach the MCP server at {self._shown_url()}: "
                f"{self._text(str(exc)) or type(exc).__name__}.",
            )  # fmt: skip
        log.info("MCP session with %s failed: %r", self._shown_url(), type(exc).__name__)
        return McpFailure(
            "mcp_protocol_error", -32603,
            f"The MCP server at {self._shown_url()} did not speak MCP as expected "
            f"({type(exc).__name__}).",
        )  # fmt: skip

    def _text(self, text: str) -> str:
        return scrub(text, self._secrets)[:_MAX_MESSAGE]

    def _shown_url(self) -> str:
        return without_userinfo(self.url)
