"""What the services report as they work, to whoever observes them (metrics, for now).

The services call these methods unconditionally; the base class does nothing, so a
server without metrics pays one method call per turn and per tool call, nothing more.
"""

from __future__ import annotations


class Observer:
    def turn_ended(self, model: str, status: str) -> None:
        """A Responses turn ended: completed, incomplete, failed or cancelled."""

    def tool_called(self, kind: str, status: str) -> None:
        """A server-side tool call (e.g. mcp_call) ended: completed or failed."""


NOT_OBSERVED = Observer()
