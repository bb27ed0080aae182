"""A real MCP server for tests and benchmarks: the `mcp` SDK's MCPServer over streamable
HTTP (`/mcp`) and the older HTTP+SSE transport (`/sse`), on 127.0.0.1.

Tools: `add(a, b)`, `echo(text)`, `slow(seconds)` (sleeps, then answers), `fail(text)`
(always raises: an MCP tool execution error), `headline(text)` (read-only, annotated so),
`headers()` (the HTTP headers it received: a server that echoes secrets).
Every HTTP request it receives is recorded (method, path, headers, JSON-RPC method), so a
test can see what convostack sent, and what it did not (a list call it skipped, say).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from convostack.testing.background import serving


def build_server() -> MCPServer:
    server: MCPServer = MCPServer("convostack-test-tools")

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> int:
        return a + b

    @server.tool(description="Say the text back.")
    def echo(text: str) -> str:
        return text

    @server.tool(description="Wait some seconds, then answer.")
    async def slow(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return f"waited {seconds}"

    @server.tool(description="Always fails.")
    def fail(text: str) -> str:
        raise ToolError(f"fail was asked to fail on {text!r}")

    @server.tool(
        description="The text in capitals.", annotations=ToolAnnotations(readOnlyHint=True)
    )
    def headline(text: str) -> str:
        return text.upper()

    @server.tool(description="The request headers this server received, as text.")
    def headers(ctx: Context) -> str:
        request = ctx.request_context.request
        return repr(dict(getattr(request, "headers", {})))

    return server


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    rpc_method: str | None


@dataclass
class _Recorder:
    """ASGI middleware: keeps each request's method, path, headers and JSON-RPC method."""

    app: ASGIApp
    requests: list[Recorded] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        rpc: Any = None
        with contextlib.suppress(orjson.JSONDecodeError):
            rpc = orjson.loads(body) if body else None
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        method = rpc.get("method") if isinstance(rpc, dict) else None
        self.requests.append(Recorded(scope["method"], scope["path"], headers, method))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


@dataclass
class McpTestServer:
    url: str  # the streamable HTTP endpoint, .../mcp
    sse_url: str  # the SSE endpoint, .../sse
    recorder: _Recorder
    sse_recorder: _Recorder

    def calls(self, rpc_method: str) -> list[Recorded]:
        return [r for r in self.recorder.requests + self.sse_recorder.requests
                if r.rpc_method == rpc_method]  # fmt: skip

    def reset(self) -> None:
        self.recorder.requests.clear()
        self.sse_recorder.requests.clear()


@contextlib.contextmanager
def mcp_test_server() -> Iterator[McpTestServer]:
    """Both transports, each on a free port of 127.0.0.1, until the block ends."""
    server = build_server()
    streamable = _Recorder(server.streamable_http_app())
    sse = _Recorder(server.sse_app())
    with serving(streamable, lifespan="on") as port, serving(sse, lifespan="on") as sse_port:
        yield McpTestServer(
            f"http://127.0.0.1:{port}/mcp", f"http://127.0.0.1:{sse_port}/sse", streamable, sse
        )
