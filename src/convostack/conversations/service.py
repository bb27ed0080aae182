"""The Conversations service: validation, normalisation and the store, for one principal."""

from __future__ import annotations

import asyncio
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
    CopiesTooLarge,
    CursorMissing,
    DuplicateItemId,
    ItemMissing,
    ItemPage,
    NewItem,
    Order,
    Store,
)
from convostack.storage.quotas import QuotaExceeded


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


# How long validating one request's items may hold the event loop before letting other
# requests run.
SLICE_SECONDS = 0.002


class _Pauses:
    """Yields to the event loop whenever the caller has held it for SLICE_SECONDS."""

    def __init__(self) -> None:
        self._since = time.perf_counter()

    async def now_and_then(self) -> None:
        if time.perf_counter() - self._since > SLICE_SECONDS:
            await asyncio.sleep(0)
            self._since = time.perf_counter()


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


_QUOTA_SETTINGS = {
    "conversations": ("conversations", "max_conversations_per_principal"),
    "items": ("items", "max_items_per_principal"),
    "bytes": ("bytes of items", "max_stored_bytes_per_principal"),
}


def quota_exceeded(exc: QuotaExceeded) -> InvalidRequestError:
    """A 400, not a 429: waiting does not free a quota, deleting does (and the openai
    client retries 429s by itself)."""
    unit, setting = _QUOTA_SETTINGS[exc.what]
    return InvalidRequestError(
        f"Quota exceeded: this principal holds {exc.held} {unit}; adding {exc.adding} "
        f"would pass its quota of {exc.limit} (setting {setting}). Delete some, or ask "
        "the server's operator for a larger quota.",
        code="quota_exceeded",
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
        """Validate and normalise input items; resolve item references to stored copies
        (all of them in one store call).

        Up to max_input_items items (2,000 take about 20 ms of CPU): the work is cut in
        slices of a few milliseconds, between which other requests run."""
        pause = _Pauses()
        kinds: list[str] = []
        for n, raw in enumerate(raw_items):
            where = f"{param}[{n}]"
            kind = validate_item(raw, where)
            if kind != "item_reference":
                self.limits.check_item_text(raw, where)
            kinds.append(kind)
            await pause.now_and_then()
        referenced = await self._referenced(owner, raw_items, kinds, param)
        items: list[NewItem] = []
        params: list[str] = []
        seen: set[str] = set()
        for n, (raw, kind) in enumerate(zip(raw_items, kinds, strict=True)):
            where = f"{param}[{n}]"
            item: Item
            if kind == "item_reference":
                # The reference becomes a copy of the item, under a fresh id of its type.
                stored = referenced[raw["id"]]
                copied = {k: v for k, v in stored.items() if k != "id"}
                item = normalise_item(copied, stored["type"])
                fresh = True
            else:
                item = normalise_item(raw, kind)
                fresh = raw.get("id") is None
            if item["id"] in seen:
                raise invalid_value(
                    f"{where}.id", f"Duplicate item id '{item['id']}' in '{param}'."
                )
            seen.add(item["id"])
            items.append(NewItem(item["id"], item["type"], orjson.dumps(item), fresh))
            params.append(where)
            await pause.now_and_then()
        return PreparedItems(items, params)

    async def _referenced(
        self, owner: str, raw_items: Sequence[Any], kinds: list[str], param: str
    ) -> dict[str, Item]:
        """The stored items the references name, parsed, each read once, with their
        copies' total size checked against max_reference_bytes."""
        ids = [raw["id"] for raw, kind in zip(raw_items, kinds, strict=True)
               if kind == "item_reference"]  # fmt: skip
        if not ids:
            return {}
        try:
            bodies = await self._store.find_items(
                owner, ids, max_bytes=self.limits.max_reference_bytes
            )
        except CopiesTooLarge as exc:
            self.limits.check_reference_bytes(exc.size, param)
            raise  # not reached: the size is past the limit
        for item_id in ids:
            if item_id not in bodies:
                raise item_not_found(item_id)
        return {item_id: orjson.loads(body) for item_id, body in bodies.items()}

    async def create(self, owner: str, raw_items: list[Any] | None, metadata: Any) -> Conversation:
        checked = check_metadata(metadata)
        prepared = await self.prepare_items(
            owner, check_item_count(raw_items or [], "items", minimum=0), "items"
        )
        row = ConversationRow(
            id=new_conversation_id(), created_at=int(time.time()), metadata=checked
        )
        self.limits.check_conversation_size(row.id, 0, len(prepared.items), "items")
        try:
            await self._store.create_conversation(owner, row, prepared.items)
        except QuotaExceeded as exc:
            raise quota_exceeded(exc) from None
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
        except QuotaExceeded as exc:
            raise quota_exceeded(exc) from None
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
