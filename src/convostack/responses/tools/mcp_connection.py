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
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx2

from convostack.redaction import Scrubber, split_userinfo
from convostack.responses.tools.urls import secret_values

if TYPE_CHECKING:  # the SDK is imported on first use: a second at start-up otherwise
    from mcp import Client
    from mcp.types import CallToolResult, Tool

log = logging.getLogger(__name__)

TIMEOUT_CODE = -32001  # JSON-RPC's "request timed out", as MCP clients report it
_MAX_MESSAGE = 500


@dataclass
class McpFailure(Exception):
    """A session or a call that failed: the shape of the `error` OpenAI gives an item."""

    kind: str  # "http_error" or "mcp_protocol_error"
    code: int
    message: str

    def error(self) -> dict[str, Any]:
        return {"type": self.kind, "code": self.code, "message": self.message}


class McpConnection:
    """A session with one MCP server, opened on first use, reopened after it ends.

    It closes itself once unused for `idle_seconds` (no call in flight): whoever holds it
    (a turn, the pool) may then forget it without leaking a connection, and a turn that
    uses it again gets a new session.
    """

    def __init__(
        self, url: str, headers: dict[str, str], connect_timeout: float, idle_seconds: float
    ):
        self.url = url
        self._headers = headers
        self._secrets = secret_values(headers)
        self._connect_timeout = connect_timeout
        self._idle_seconds = idle_seconds
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[Client] | None = None
        self._stop = asyncio.Event()
        self._in_flight = 0
        self._last_used = time.monotonic()
        self.broken = False  # a transport failure: not worth keeping for another turn

    @property
    def usable(self) -> bool:
        """Open (or never opened) and not broken: fit to be kept for a later turn."""
        if self.broken:
            return False
        return self._task is None or not self._task.done()

    async def list_tools(self, seconds: float) -> list[Tool]:
        tools: list[Tool] = []
        cursor: str | None = None
        async with self._using(seconds) as client:
            while True:
                page = await client.list_tools(cursor=cursor)
                tools += page.tools
                cursor = page.next_cursor
                if not cursor:
                    return tools

    async def call_tool(
        self, name: str, arguments: dict[str, Any], seconds: float
    ) -> CallToolResult:
        from mcp.shared.exceptions import MCPError
        from mcp.types import CallToolRequest, CallToolRequestParams, CallToolResult
        from mcp.types.jsonrpc import HEADER_MISMATCH

        async with self._using(seconds) as client:
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

    @contextlib.asynccontextmanager
    async def _using(self, seconds: float) -> AsyncIterator[Client]:
        self._in_flight += 1
        try:
            client = await self._open()
            async with self._failures(seconds):
                yield client
        finally:
            self._in_flight -= 1
            self._last_used = time.monotonic()

    # -- the session's own task ---------------------------------------------------------

    async def _open(self) -> Client:
        if self._task is None or self._task.done():
            self._stop = asyncio.Event()
            self._ready = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._hold(self._ready))
        assert self._ready is not None
        try:
            async with asyncio.timeout(self._connect_timeout):
                return await asyncio.shield(self._ready)
        except TimeoutError:
            self.broken = True
            raise McpFailure(
                "http_error", 0,
                f"Could not connect to the MCP server at {self._shown_url()} within "
                f"{self._connect_timeout:g} s (setting tool_connect_timeout_seconds).",
            ) from None  # fmt: skip

    async def _hold(self, ready: asyncio.Future[Client]) -> None:
        """Enter a session (streamable HTTP, else SSE), serve until closed or idle,
        leave it."""
        failure: McpFailure | None = None
        for transport in (self._streamable, self._sse):
            try:
                async with transport() as client:
                    if not ready.done():
                        ready.set_result(client)
                    await self._serve()
                    return
            except Exception as exc:  # any transport error: try the next, then report
                if ready.done():
                    log.info("MCP session with %s ended: %s", self._shown_url(), type(exc).__name__)
                    self.broken = True
                    return
                failure = failure or self._failure(exc)
        if not ready.done() and failure is not None:
            self.broken = True
            ready.set_exception(failure)

    async def _serve(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._idle_seconds)
            idle = time.monotonic() - self._last_used
            if self._in_flight == 0 and idle >= self._idle_seconds:
                return

    @contextlib.asynccontextmanager
    async def _streamable(self) -> AsyncIterator[Client]:
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client

        async with (
            httpx2.AsyncClient(headers=self._headers, timeout=self._http_timeout()) as http,
            Client(streamable_http_client(self.url, http_client=http)) as client,
        ):
            yield client

    @contextlib.asynccontextmanager
    async def _sse(self) -> AsyncIterator[Client]:
        from mcp import Client
        from mcp.client.sse import sse_client

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
            from mcp.shared.exceptions import MCPError

            # An MCP error means the server answered: the session is still good.
            self.broken = self.broken or not isinstance(exc, MCPError)
            raise self._failure(exc) from None

    def _failure(self, exc: BaseException) -> McpFailure:
        from mcp.shared.exceptions import MCPError

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
        return Scrubber(self._secrets, limit=_MAX_MESSAGE)(text)

    def _shown_url(self) -> str:
        return split_userinfo(self.url)[0]
