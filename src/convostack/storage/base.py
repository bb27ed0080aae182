"""The store protocol: everything services may ask of a database, and nothing more.

Item bodies travel as the JSON bytes that are stored, so listing a page never parses or
re-serialises an item: routes splice the bytes into the response. Every call names the
owner (the principal), and a row of another owner is treated exactly as a missing one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Order = Literal["asc", "desc"]


@dataclass(frozen=True, slots=True)
class ConversationRow:
    id: str
    created_at: int
    metadata: dict[str, str]


@dataclass(frozen=True, slots=True)
class NewItem:
    """An item ready to store: its id, its type and its full JSON body."""

    id: str
    type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class ItemPage:
    ids: list[str]
    bodies: list[bytes]
    has_more: bool


class StoreError(Exception):
    """Base of the store's own exceptions; services turn them into API errors."""


class ConversationMissing(StoreError):
    def __init__(self, conversation_id: str):
        super().__init__(conversation_id)
        self.conversation_id = conversation_id


class ItemMissing(StoreError):
    def __init__(self, item_id: str):
        super().__init__(item_id)
        self.item_id = item_id


class CursorMissing(StoreError):
    """The `after` cursor names no item (ever) of this conversation."""

    def __init__(self, item_id: str):
        super().__init__(item_id)
        self.item_id = item_id


class DuplicateItemId(StoreError):
    """An item id given by the caller is already used in this conversation."""

    def __init__(self, item_id: str):
        super().__init__(item_id)
        self.item_id = item_id


class StoreUnavailable(StoreError):
    """The database cannot be reached or is locked for too long; the caller may retry."""


class Store(Protocol):
    async def start(self) -> None:
        """Open connections and apply pending migrations."""

    async def close(self) -> None:
        """Finish queued writes and release every connection."""

    async def create_conversation(
        self, owner: str, conversation: ConversationRow, items: Sequence[NewItem]
    ) -> None: ...

    async def get_conversation(self, owner: str, conversation_id: str) -> ConversationRow:
        """Raises ConversationMissing."""
        ...

    async def update_metadata(
        self, owner: str, conversation_id: str, metadata: dict[str, str]
    ) -> ConversationRow:
        """Raises ConversationMissing."""
        ...

    async def delete_conversation(self, owner: str, conversation_id: str) -> None:
        """Deletes the conversation and all its items. Raises ConversationMissing."""
        ...

    async def append_items(
        self, owner: str, conversation_id: str, items: Sequence[NewItem]
    ) -> None:
        """Appends as one block, after every item already there.

        Raises ConversationMissing or DuplicateItemId; on error nothing is appended.
        """
        ...

    async def list_items(
        self, owner: str, conversation_id: str, *, after: str | None, limit: int, order: Order
    ) -> ItemPage:
        """Raises ConversationMissing or CursorMissing."""
        ...

    async def get_item(self, owner: str, conversation_id: str, item_id: str) -> bytes:
        """Raises ConversationMissing or ItemMissing."""
        ...

    async def delete_item(self, owner: str, conversation_id: str, item_id: str) -> ConversationRow:
        """Raises ConversationMissing or ItemMissing."""
        ...

    async def find_item(self, owner: str, item_id: str) -> bytes:
        """The newest stored item with this id in any of the owner's conversations.

        Raises ItemMissing.
        """
        ...
