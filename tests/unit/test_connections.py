"""The HTTP connection limits (connections.py) driven in-process: a protocol per
connection on a transport with no socket, the app an endpoint that answers at once or
waits to be let go."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.server import ServerState

from convostack.connections import ConnectionLimits, GuardedHttpToolsProtocol, LimitedConfig
from convostack.testing.transport import MemoryTransport

GET = b"GET /v1/health HTTP/1.1\r\nhost: x\r\n\r\n"
LIMITS = ConnectionLimits(max_connections=3, max_header_bytes=4096, max_url_bytes=1024)


class App:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b"{}"})


class Server:
    def __init__(self, limits: ConnectionLimits = LIMITS) -> None:
        self.app = App()
        self.config = LimitedConfig(self.app, limits, log_config=None)
        self.config.load()
        self.state = ServerState()

    def connect(self) -> tuple[GuardedHttpToolsProtocol, MemoryTransport]:
        protocol = GuardedHttpToolsProtocol(
            config=self.config, server_state=self.state, app_state={}
        )
        transport = MemoryTransport()
        protocol.connection_made(transport)
        return protocol, transport


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def status_and_error(transport: MemoryTransport) -> tuple[int, dict[str, Any]]:
    head, _, body = bytes(transport.written).partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)["error"] if body else {}


async def test_keep_alive_requests_are_served_one_after_another() -> None:
    protocol, transport = Server().connect()
    for _ in range(3):
        protocol.data_received(GET)
        await settle()
    assert bytes(transport.written).count(b"HTTP/1.1 200 OK") == 3
    assert not transport.closed


async def test_a_head_arriving_in_pieces_past_the_limit_is_a_431() -> None:
    protocol, transport = Server().connect()
    protocol.data_received(b"GET /v1/health HTTP/1.1\r\nx-filler: ")
    for _ in range(5):
        protocol.data_received(b"a" * 1000)
    status, error = status_and_error(transport)
    assert (status, error["code"]) == (431, "request_header_fields_too_large")
    assert transport.eof_written  # lingering: what still comes is read and dropped
    protocol.data_received(b"a" * 100_000)
    assert protocol.parser is None


async def test_a_head_pipelined_behind_a_running_request_counts_too() -> None:
    server = Server()
    protocol, transport = server.connect()
    server.app.release.clear()
    protocol.data_received(GET + b"GET /v1/health HTTP/1.1\r\nx-filler: ")
    await settle()
    protocol.data_received(b"a" * 5000)
    assert transport.closed  # no room to answer behind the running response


async def test_past_the_cap_the_longest_idle_connection_makes_room() -> None:
    server = Server()
    _, first_transport = server.connect()
    await asyncio.sleep(0.01)
    busy = [server.connect() for _ in range(2)]
    server.app.release.clear()
    for protocol, _ in busy:
        protocol.data_received(GET)
    await settle()
    _, new_transport = server.connect()  # a fourth: the idle first one goes
    assert first_transport.closed
    assert not new_transport.closed
    assert not any(transport.closed for _, transport in busy)


async def test_when_all_connections_are_busy_a_new_one_gets_a_503() -> None:
    server = Server()
    server.app.release.clear()
    busy = [server.connect() for _ in range(3)]
    for protocol, _ in busy:
        protocol.data_received(GET)
    await settle()
    _, refused = server.connect()
    status, error = status_and_error(refused)
    assert (status, error["code"]) == (503, "server_busy")
    assert b"retry-after: 1" in refused.written
    server.app.release.set()
    await settle()
    assert all(b"200 OK" in transport.written for _, transport in busy)


async def test_a_silent_connection_is_closed_after_the_header_timeout() -> None:
    server = Server(ConnectionLimits(header_timeout=0.1, body_timeout=0.1))
    _, silent = server.connect()
    started, (protocol, slow) = asyncio.get_running_loop().time(), server.connect()
    protocol.data_received(b"GET /v1/health HTTP/1.1\r\n")
    while not (silent.closed and slow.eof_written):  # answered, lingering before it closes
        assert asyncio.get_running_loop().time() - started < 2
        await asyncio.sleep(0.02)
    assert silent.written == b""  # it said nothing: nobody to answer
    assert status_and_error(slow)[0] == 408
