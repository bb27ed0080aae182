"""The store protocol: everything services may ask of a database, and nothing more.

Item bodies travel as the JSON bytes that are stored, so listing a page never parses or
re-serialises an item: routes splice the bytes into the response. Every call names the
owner (the principal), and a row of another owner is treated exactly as a missing one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from convostack.storage.background_base import BackgroundStore
from convostack.storage.common import Order as Order
from convostack.storage.common import StoreError as StoreError
from convostack.storage.files_base import FileStore
from convostack.storage.webhooks_base import WebhookStore


@dataclass(frozen=True, slots=True)
class ConversationRow:
    id: str
    created_at: int
    metadata: dict[str, str]


@dataclass(frozen=True, slots=True)
class ConversationPage:
    rows: list[ConversationRow]
    has_more: bool


@dataclass(frozen=True, slots=True)
class NewItem:
    """An item ready to store: its id, its type and its full JSON body. `fresh` says the
    id was just made here (ids.new_id: 160 random bits), so no stored item can have it
    and a store need not look; a caller's own id is looked for."""

    id: str
    type: str
    body: bytes
    fresh: bool = False


@dataclass(frozen=True, slots=True)
class ItemPage:
    ids: list[str]
    bodies: list[bytes]
    has_more: bool


@dataclass(frozen=True, slots=True)
class HistoryRead:
    """A conversation's items read from `since` on (`Store.history_since`), and its
    version: `next_seq` items ever appended, `deleted` of them deleted since. Items are
    only ever appended or deleted, so the pair names one state of the history."""

    next_seq: int
    deleted: int
    since: int  # the sequence number the bodies start from (0: the whole history)
    bodies: list[bytes]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    created_at: int
    model: str
    status: str
    conversation_id: str | None
    previous_response_id: str | None
    body: bytes  # the Response object's JSON
    input_items: bytes  # JSON array of the response's own input items


@dataclass(frozen=True, slots=True)
class Turn:
    """What one finished turn writes, all or nothing: items appended to a conversation
    (input, then output) and the response, when it is to be kept."""

    conversation_id: str | None
    items: Sequence[NewItem]
    response: StoredResponse | None


@dataclass(frozen=True, slots=True)
class ResponsePage:
    ids: list[str]
    bodies: list[bytes]
    has_more: bool


class ConversationMissing(StoreError):
    def __init__(self, conversation_id: str):
        super().__init__(conversation_id)
        self.conversation_id = conversation_id


class ItemMissing(StoreError):
    def __init__(self, item_id: str):
        super().__init__(item_id)
        self.item_id = item_id


class ResponseMissing(StoreError):
    def __init__(self, response_id: str):
        super().__init__(response_id)
        self.response_id = response_id


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


class ConversationFull(StoreError):
    """An append would take the conversation past its item limit; `held` is how many
    items it holds now."""

    def __init__(self, conversation_id: str, held: int):
        super().__init__(conversation_id)
        self.conversation_id = conversation_id
        self.held = held


class CopiesTooLarge(StoreError):
    """Items looked up to be copied would add up to `size` bytes, more than allowed."""

    def __init__(self, size: int):
        super().__init__(size)
        self.size = size


def check_copies(item_ids: Sequence[str], sizes: dict[str, int], max_bytes: int | None) -> None:
    """Raises CopiesTooLarge when the found items, each counted as often as `item_ids`
    names it, add up to more than `max_bytes`."""
    if max_bytes is not None:
        size = sum(sizes.get(item_id, 0) for item_id in item_ids)
        if size > max_bytes:
            raise CopiesTooLarge(size)


class StoreUnavailable(StoreError):
    """The database cannot be reached or is locked for too long; the caller may retry."""


class Store(FileStore, BackgroundStore, WebhookStore, Protocol):
    async def start(self) -> None:
        """Open connections and apply pending migrations."""

    async def close(self) -> None:
        """Finish queued writes and release every connection."""

    async def create_conversation(
        self, owner: str, conversation: ConversationRow, items: Sequence[NewItem]
    ) -> None: ...

    async def list_conversations(
        self,
        owner: str,
        *,
        after: str | None,
        limit: int,
        order: Order,
        metadata: dict[str, str],
    ) -> ConversationPage:
        """The owner's conversations in creation order, those whose metadata holds every
        key and value of `metadata`. Raises CursorMissing when `after` names none of
        the owner's conversations."""
        ...

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
        self,
        owner: str,
        conversation_id: str,
        items: Sequence[NewItem],
        *,
        max_items: int | None = None,
    ) -> None:
        """Appends as one block, after every item already there.

        Raises ConversationMissing, DuplicateItemId, or ConversationFull if the
        conversation would then hold more than `max_items` items (deleted ones not
        counted); on error nothing is appended.
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

    async def find_items(
        self, owner: str, item_ids: Sequence[str], *, max_bytes: int | None = None
    ) -> dict[str, bytes]:
        """The newest live item with each id in any of the owner's conversations, for
        many ids in one call: each id found, with its item's body (ids not found are
        left out). Raises CopiesTooLarge, having read no body, when the
        items' sizes, each counted as often as `item_ids` names it, pass `max_bytes`."""
        ...

    async def all_items(self, owner: str, conversation_id: str) -> list[bytes]:
        """Every item of the conversation, oldest first. Raises ConversationMissing."""
        ...

    async def history_since(
        self, owner: str, conversation_id: str, next_seq: int, deleted: int
    ) -> HistoryRead:
        """The live items appended from sequence number `next_seq` on, oldest first, when
        the conversation still has the `deleted` deletions a reader saw at `next_seq`
        (only appends since); else every live item (`since` 0). The bodies are those
        of the version returned, or of an older one when a delete came between (then
        the version returned is the older one too). Raises ConversationMissing."""
        ...

    async def save_turn(self, owner: str, turn: Turn, *, max_items: int | None = None) -> None:
        """Appends the turn's items and stores its response in one transaction.

        Raises ConversationMissing (deleted meanwhile), DuplicateItemId, or
        ConversationFull if the conversation would then hold more than `max_items` items
        (checked inside the append, so concurrent turns never pass it); then nothing is
        written, the response included.
        """
        ...

    async def get_response(self, owner: str, response_id: str) -> StoredResponse:
        """Raises ResponseMissing."""
        ...

    async def response_chain(self, owner: str, response_id: str) -> list[StoredResponse]:
        """The response and its `previous_response_id` ancestors, oldest first.

        Raises ResponseMissing when the first one is unknown; the chain stops at a
        deleted ancestor.
        """
        ...

    async def delete_response(self, owner: str, response_id: str) -> None:
        """Raises ResponseMissing."""
        ...

    async def responses_version(self, owner: str, response_ids: Sequence[str]) -> tuple[int, int]:
        """How many of `response_ids` are the owner's stored responses, and the total size
        of their bodies (from the index and the values' headers: no body is read), so a
        kept chain is known unchanged: none deleted, none stored again."""
        ...

    async def list_responses(
        self, owner: str, *, after: str | None, limit: int, order: Order, model: str | None
    ) -> ResponsePage:
        """Raises CursorMissing."""
        ...
