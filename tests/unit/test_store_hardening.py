"""Issue 12 at the store, on every backend: a big body is never read to find a small one."""

from __future__ import annotations

import time

from convostack.storage.base import ConversationRow, NewItem, Store

OWNER = "tenant"
BIG_BYTES = 20 * 2**20


def _item(item_id: str, pad: int = 0) -> NewItem:
    body = b'{"id":"%s","pad":"%s"}' % (item_id.encode(), b"x" * pad)
    return NewItem(item_id, "message", body)


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
