"""The MCP session pool keeps a session for one principal, URL and headers only."""

from __future__ import annotations

from convostack.responses.tools.mcp_pool import MAX_KEPT_PER_KEY, McpSessionPool


async def test_a_session_is_kept_for_its_principal_url_and_headers_only() -> None:
    pool = McpSessionPool(connect_timeout=1, idle_seconds=60)
    headers = {"Authorization": "Bearer a"}
    session = pool.take("alice", "https://mcp.example/mcp", headers)
    await pool.give_back("alice", session, headers)
    assert pool.take("bob", "https://mcp.example/mcp", headers) is not session
    assert (
        pool.take("alice", "https://mcp.example/mcp", {"Authorization": "Bearer b"}) is not session
    )
    assert pool.take("alice", "https://other.example/mcp", headers) is not session
    assert pool.take("alice", "https://mcp.example/mcp", headers) is session
    # Taken: not handed out twice.
    assert pool.take("alice", "https://mcp.example/mcp", headers) is not session
    await pool.close()


async def test_broken_sessions_and_extras_are_not_kept() -> None:
    pool = McpSessionPool(connect_timeout=1, idle_seconds=60)
    broken = pool.take("alice", "https://mcp.example/mcp", {})
    broken.broken = True
    await pool.give_back("alice", broken, {})
    assert pool.take("alice", "https://mcp.example/mcp", {}) is not broken
    sessions = [
        pool.take("alice", "https://mcp.example/mcp", {}) for _ in range(MAX_KEPT_PER_KEY + 2)
    ]
    for session in sessions:
        await pool.give_back("alice", session, {})
    kept = {
        id(pool.take("alice", "https://mcp.example/mcp", {})) for _ in range(MAX_KEPT_PER_KEY + 2)
    }
    assert len(kept & {id(s) for s in sessions}) == MAX_KEPT_PER_KEY
    await pool.close()
