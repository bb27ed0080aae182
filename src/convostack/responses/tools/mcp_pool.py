"""MCP sessions kept between turns, so that a conversation's next turn does not open a
new session (the SDK's handshake and task set-up, 10-20 ms) before its first call.

A session is kept for the principal that opened it, with the same URL and headers: one
tenant never uses a session opened with another's credentials, nor shares server-side
session state with another tenant. Kept sessions close themselves once idle
(`mcp_session_idle_seconds`), and the pool forgets them then.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from convostack.responses.tools.mcp_connection import McpConnection

_PoolKey = tuple[str, str, tuple[tuple[str, str], ...]]
MAX_KEPT_PER_KEY = 4


class McpSessionPool:
    def __init__(self, connect_timeout: float, idle_seconds: float):
        self._connect_timeout = connect_timeout
        self._idle_seconds = idle_seconds
        self._kept: dict[_PoolKey, list[McpConnection]] = defaultdict(list)

    def take(self, owner: str, url: str, headers: dict[str, str]) -> McpConnection:
        """A kept session for this principal, URL and headers, else a new one (unopened)."""
        kept = self._kept.get(_key(owner, url, headers))
        while kept:
            session = kept.pop()
            if session.usable:
                return session
        return McpConnection(url, headers, self._connect_timeout, self._idle_seconds)

    async def give_back(self, owner: str, session: McpConnection, headers: dict[str, str]) -> None:
        kept = self._kept[_key(owner, session.url, headers)]
        kept[:] = [s for s in kept if s.usable]
        if session.usable and len(kept) < MAX_KEPT_PER_KEY:
            kept.append(session)
        else:
            await session.close()

    async def close(self) -> None:
        sessions = [s for kept in self._kept.values() for s in kept]
        self._kept.clear()
        await asyncio.gather(*(s.close() for s in sessions))


def _key(owner: str, url: str, headers: dict[str, str]) -> _PoolKey:
    return owner, url, tuple(sorted(headers.items()))
