"""A background turn with an MCP tool that carries a secret header: the request is kept
sealed until the turn runs (never in clear in the database), and the header still
reaches the MCP server when it does."""

from __future__ import annotations

import sqlite3
import time

import openai
import pytest
from openai.types.responses.tool_param import Mcp

from convostack.testing.mcp_server import McpTestServer
from convostack.testing.plugin import only_in_library_mode
from convostack.testing.stack import Target
from convostack.testing.upstream import FAKE_MODEL as MODEL

SECRET = "Bearer background-secret-5521"


def _stored_bytes(path: str) -> bytes:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT coalesce(request, x''), body FROM responses "
            "UNION ALL SELECT event, x'' FROM response_events"
        ).fetchall()
    return b"".join(bytes(a) + bytes(b) for a, b in rows)


def test_a_background_turn_keeps_its_mcp_headers_sealed(
    request: pytest.FixtureRequest, client: openai.OpenAI, stack_target: Target,
    mcp: McpTestServer,
) -> None:  # fmt: skip
    only_in_library_mode(request.config, "reads the in-process stack's SQLite database")
    url = stack_target.app.state.stack.config.database_url  # type: ignore[union-attr]
    if not url.startswith("sqlite:///"):
        pytest.skip("reads the SQLite database file")
    tool: Mcp = {"type": "mcp", "server_label": "t", "server_url": mcp.url,
            "headers": {"Authorization": SECRET}, "require_approval": "never"}  # fmt: skip
    queued = client.responses.create(
        model=MODEL, input="call echo hello", background=True, tools=[tool], stream=True
    )
    first = next(iter(queued))
    response_id = first.response.id  # type: ignore[union-attr]
    assert SECRET.encode() not in _stored_bytes(url.removeprefix("sqlite:///"))
    deadline = time.monotonic() + 20
    while client.responses.retrieve(response_id).status != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert SECRET.encode() not in _stored_bytes(url.removeprefix("sqlite:///"))
    calls = mcp.calls("tools/call")
    assert calls
    assert all(c.headers.get("authorization") == SECRET for c in calls)
