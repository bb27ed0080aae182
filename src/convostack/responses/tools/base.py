"""The tool kinds a turn may offer, behind one protocol, registered by their `type`.

A kind checks its tool definitions when the request arrives (a mistake is a 4xx before
anything runs), echoes them in the Response (without secrets), and prepares its part of
one turn: the functions offered to the model, the items that open the output (an MCP
server's tool list, calls approved in this turn's input), how each call the model makes
is shown, and how the server runs it. The loop (`loop.py`) knows nothing of any kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from convostack.providers.base import JSONDict
from convostack.responses.output import CallShape
from convostack.responses.tools.mcp_pool import McpSessionPool
from convostack.responses.tools.settings import ToolSettings

Item = dict[str, Any]


@dataclass
class PrepareContext:
    """What a kind may look at while a turn is prepared."""

    owner: str
    sessions: McpSessionPool
    settings: ToolSettings
    history: list[Item]  # the conversation's or chain's items, before any truncation
    new_input: list[Item]
    tool_choice: Any  # the request's, parsed
    # the caller's tools, as the model sees them
    client_names: set[str] = field(default_factory=set)
    searcher: Any = None  # vector_stores.search.Searcher, for file_search
    include: list[str] = field(default_factory=list)  # the request's `include`


@dataclass
class OpeningItem:
    """An item at the head of the output: already done, or a call to run first."""

    item: JSONDict
    shape: CallShape | None = None  # a call to run (None: done as it is)
    progress: str | None = None  # e.g. "response.mcp_list_tools": its .in_progress/.completed


class TurnTools(Protocol):
    """One kind's part of one turn."""

    def chat_tools(self) -> list[JSONDict]:
        """Chat Completions `tools` entries offered to the model."""
        ...

    def chat_tool_choice(self) -> Any:
        """The chat `tool_choice` for the request's own choice, if it names this kind;
        None otherwise."""
        ...

    def opening_items(self) -> list[OpeningItem]: ...

    def shape_of(self, name: str) -> CallShape | None:
        """How a call of the offered function `name` is shown; None if not this kind's."""
        ...

    def unknown_call_shape(self, name: str) -> CallShape | None:
        """How a call of a function no one offered is shown when there are no function
        tools to own it (None: not this kind's business)."""
        ...

    def breaker_key(self, item: JSONDict) -> str:
        """Calls with one key fail together (one server): the breaker counts by it."""
        ...

    def model_texts(self) -> dict[str, str]:
        """What the model reads as the result of each call it ran, by item id, when that
        is not the item's own `output` (file_search's results may be left out of the
        item: include)."""
        ...

    def citations(self, text: str) -> list[JSONDict]:
        """The annotations this kind puts on the turn's answer `text` (file citations)."""
        ...

    async def run(self, item: JSONDict) -> bool:
        """Run a call: fill in its result (or error) and status; True if it succeeded."""
        ...

    def refuse(self, item: JSONDict, message: str) -> None:
        """Mark a call failed without running it."""
        ...

    async def close(self) -> None: ...


class ToolKind(Protocol):
    type: str

    def check(self, tool: JSONDict, param: str, settings: ToolSettings) -> None:
        """A 4xx for a malformed definition (shape only: nothing is contacted here)."""
        ...

    def echo(self, tool: JSONDict) -> JSONDict:
        """The definition as the Response shows it: every field, no secret."""
        ...

    async def prepare(
        self, tools: list[tuple[int, JSONDict]], context: PrepareContext
    ) -> TurnTools:
        """This kind's part of a turn, from its definitions (with their `tools` index)."""
        ...
