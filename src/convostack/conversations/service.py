"""The Conversations service: validation, normalisation and the store, for one principal."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from convostack.conversations.items import (
    Item,
    check_item_count,
    normalise_item,
    validate_item,
)
from convostack.conversations.models import INCLUDABLE
from convostack.errors import (
    InvalidRequestError,
    conversation_not_found,
    invalid_value,
    item_not_found,
)
from convostack.ids import MAX_ID_LENGTH, check_id, new_conversation_id
from convostack.limits import Limits
from convostack.metadata import check_metadata
from convostack.storage.base import (
    ConversationFull,
    ConversationMissing,
    ConversationRow,
    CursorMissing,
    DuplicateItemId,
    ItemMissing,
    ItemPage,
    NewItem,
    Order,
    Store,
)


@dataclass(frozen=True, slots=True)
class PreparedItems:
    """Items validated and normalised, ready to append, with the param of each."""

    items: list[NewItem]
    params: list[str]

    def param_of(self, item_id: str) -> str | None:
        for item, param in zip(self.items, self.params, strict=True):
            if item.id == item_id:
                return param
        return None


# Plain dicts, not the openai package's models: the shapes are four fields, and importing
# that package costs start-up half a second (the client parses these into its own types).
Conversation = dict[str, Any]


def _to_wire(row: ConversationRow) -> Conversation:
    return {
        "id": row.id,
        "object": "conversation",
        "created_at": row.created_at,
        "metadata": row.metadata,
    }


def check_include(values: Sequence[str], param: str = "include") -> None:
    for n, value in enumerate(values):
        if value not in INCLUDABLE:
            raise invalid_value(
                f"{param}[{n}]",
                f"Invalid value: '{value[:100]}'. Supported values are: "
                + ", ".join(f"'{v}'" for v in INCLUDABLE)
                + ".",
            )


def check_item_id(item_id: str) -> str:
    if not item_id or len(item_id) > MAX_ID_LENGTH:
        raise invalid_value("item_id", f"Invalid 'item_id': '{item_id[:MAX_ID_LENGTH]}'.")
    return item_id


class ConversationService:
    def __init__(self, store: Store, limits: Limits | None = None):
        self._store = store
        self.limits = limits or Limits()

    async def prepare_items(
        self, owner: str, raw_items: Sequence[Any], param: str
    ) -> PreparedItems:
        """Validate and normalise input items; resolve item references to stored copies."""
        items: list[NewItem] = []
        params: list[str] = []
        seen: set[str] = set()
        for n, raw in enumerate(raw_items):
            where = f"{param}[{n}]"
            kind = validate_item(raw, where)
            item: Item
            if kind == "item_reference":
                item = await self._referenced(owner, raw["id"])
                fresh = True
            else:
                self.limits.check_item_text(raw, where)
                item = normalise_item(raw, kind)
                fresh = raw.get("id") is None
            if item["id"] in seen:
                raise invalid_value(
                    f"{where}.id", f"Duplicate item id '{item['id']}' in '{param}'."
                )
            seen.add(item["id"])
            items.append(NewItem(item["id"], item["type"], orjson.dumps(item), fresh))
            params.append(where)
        return PreparedItems(items, params)

    async def _referenced(self, owner: str, item_id: str) -> Item:
        try:
            body = await self._store.find_item(owner, item_id)
        except ItemMissing:
            raise item_not_found(item_id) from None
        stored: Item = orjson.loads(body)
        # The reference becomes a copy of the item, under a fresh id of the same type.
        return normalise_item({k: v for k, v in stored.items() if k != "id"}, stored["type"])

    async def create(self, owner: str, raw_items: list[Any] | None, metadata: Any) -> Conversation:
        checked = check_metadata(metadata)
        prepared = await self.prepare_items(
            owner, check_item_count(raw_items or [], "items", minimum=0), "items"
        )
        row = ConversationRow(
            id=new_conversation_id(), created_at=int(time.time()), metadata=checked
        )
        self.limits.check_conversation_size(row.id, 0, len(prepared.items), "items")
        await self._store.create_conversation(owner, row, prepared.items)
        return _to_wire(row)

    async def list_conversations(
        self,
        owner: str,
        *,
        after: str | None,
        limit: int,
        order: Order,
        metadata: dict[str, str],
    ) -> tuple[list[Conversation], bool]:
        """A page of the owner's conversations (an extension: OpenAI has no such route),
        and whether more follow. `metadata` keeps those whose metadata holds all of it."""
        checked = check_metadata(metadata, "metadata")
        try:
            page = await self._store.list_conversations(
                owner, after=after, limit=limit, order=order, metadata=checked
            )
        except CursorMissing:
            raise invalid_value(
                "after",
                f"Invalid 'after': no conversation with id '{(after or '')[:MAX_ID_LENGTH]}'.",
            ) from None
        return [_to_wire(row) for row in page.rows], page.has_more

    async def retrieve(self, owner: str, conversation_id: str) -> Conversation:
        return _to_wire(await self.get_row(owner, conversation_id))

    async def get_row(self, owner: str, conversation_id: str) -> ConversationRow:
        check_id(conversation_id, "conv", "conversation_id")
        try:
            return await self._store.get_conversation(owner, conversation_id)
        except ConversationMissing:
            raise conversation_not_found(conversation_id) from None

    async def update(self, owner: str, conversation_id: str, metadata: Any) -> Conversation:
        check_id(conversation_id, "conv", "conversation_id")
        checked = check_metadata(metadata)
        try:
            row = await self._store.update_metadata(owner, conversation_id, checked)
        except ConversationMissing:
            raise conversation_not_found(conversation_id) from None
        return _to_wire(row)

    async def delete(self, owner: str, conversation_id: str) -> dict[str, Any]:
        check_id(conversation_id, "conv", "conversation_id")
        try:
            await self._store.delete_conversation(owner, conversation_id)
        except ConversationMissing:
            raise conversation_not_found(conversation_id) from None
        return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    async def add_items(self, owner: str, conversation_id: str, raw_items: Any) -> list[NewItem]:
        check_id(conversation_id, "conv", "conversation_id")
        items = check_item_count(raw_items, "items", minimum=1)
        prepared = await self.prepare_items(owner, items, "items")
        try:
            await self._store.append_items(
                owner,
                conversation_id,
                prepared.items,
                max_items=self.limits.max_items_per_conversation,
            )
        except ConversationMissing:
            raise conversation_not_found(conversation_id) from None
        except ConversationFull as exc:
            raise self.limits.conversation_too_long(
                conversation_id, exc.held, len(items), "items"
            ) from None
        except DuplicateItemId as exc:
            param = prepared.param_of(exc.item_id)
            raise InvalidRequestError(
                f"An item with id '{exc.item_id}' already exists in conversation "
                f"'{conversation_id}'. Leave 'id' out to get a new one.",
                code="invalid_value",
                param=f"{param}.id" if param else None,
            ) from None
        return prepared.items

    async def list_items(
        self, owner: str, conversation_id: str, *, after: str | None, limit: int, order: Order
    ) -> ItemPage:
        check_id(conversation_id, "conv", "conversation_id")
        try:
            return await self._store.list_items(
                owner, conversation_id, after=after, limit=limit, order=order
            )
        except ConversationMissing:
            raise conversation_not_found(conversation_id) from None
        except CursorMissing:
            raise invalid_value(
                "after",
                f"Invalid 'after': no item with id '{(after or '')[:MAX_ID_LENGTH]}' in "
                f"conversation '{conversation_id}'.",
            ) from None

    async def get_item(self, owner: str, conversation_id: str, item_id: str) -> bytes:
        check_id(conversation_id, "conv", "conversation_id")
        check_item_id(item_id)
        try:
            return await self._store.get_item(owner, conversation_id, item_id)
        except ConversationMissing:
            raise conversation_not_found(conversation_id) from None
        except ItemMissing:
            raise item_not_found(item_id) from None

    async def delete_item(self, owner: str, conversation_id: str, item_id: str) -> Conversation:
        check_id(conversation_id, "conv", "conversation_id")
        check_item_id(item_id)
        try:
            row = await self._store.delete_item(owner, conversation_id, item_id)
        except ConversationMissing:
            raise conversation_not_found(conversation_id) from None
        except ItemMissing:
            raise item_not_found(item_id) from None
        return _to_wire(row)
