"""Item order is the order of appends, never the clock's: many items in one tick stay ordered.

Every test runs on SQLite and on PostgreSQL (fixtures `store_url` and `store`, in
conftest.py)."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convostack.storage import open_store
from convostack.storage.base import (
    ConversationMissing,
    ConversationRow,
    DuplicateItemId,
    NewItem,
    Store,
)

OWNER = "tenant"


def _items(prefix: str, count: int) -> list[NewItem]:
    return [
        NewItem(
            id=f"msg_{prefix}_{n}", type="message", body=f'{{"id":"msg_{prefix}_{n}"}}'.encode()
        )
        for n in range(count)
    ]


_examples = itertools.count()


async def _all_ids(store: Store, conversation_id: str) -> list[str]:
    page = await store.list_items(OWNER, conversation_id, after=None, limit=10_000, order="asc")
    return page.ids


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=30))
def test_sequential_appends_keep_their_order_within_one_clock_tick(
    store_url: str, monkeypatch: pytest.MonkeyPatch, batches: list[int]
) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.0)  # every write in one tick
    conversation_id = f"conv_a{next(_examples)}"  # one database for every example

    async def scenario() -> None:
        store = open_store(store_url)
        await store.start()
        try:
            await store.create_conversation(OWNER, ConversationRow(conversation_id, 1, {}), [])
            expected: list[str] = []
            for number, size in enumerate(batches):
                batch = _items(str(number), size)
                await store.append_items(OWNER, conversation_id, batch)
                expected += [item.id for item in batch]
            assert await _all_ids(store, conversation_id) == expected
        finally:
            await store.close()

    asyncio.run(scenario())


async def test_concurrent_appends_are_blocks_in_one_order(store: Store) -> None:
    await store.create_conversation(OWNER, ConversationRow("conv_b", 1, {}), [])
    batches = [_items(str(n), 5) for n in range(50)]
    await asyncio.gather(*(store.append_items(OWNER, "conv_b", b) for b in batches))
    ids = await _all_ids(store, "conv_b")
    assert sorted(ids) == sorted(i.id for b in batches for i in b)
    # Each batch is contiguous and in its own internal order.
    for batch in batches:
        start = ids.index(batch[0].id)
        assert ids[start : start + 5] == [i.id for i in batch]


async def test_a_failed_append_writes_nothing_and_others_in_the_batch_survive(
    store: Store,
) -> None:
    await store.create_conversation(OWNER, ConversationRow("conv_c", 1, {}), _items("x", 1))
    good = _items("good", 2)
    duplicate = [*_items("new", 1), _items("x", 1)[0]]
    results = await asyncio.gather(
        store.append_items(OWNER, "conv_c", duplicate),
        store.append_items(OWNER, "conv_c", good),
        store.append_items(OWNER, "conv_missing", _items("y", 1)),
        return_exceptions=True,
    )
    assert isinstance(results[0], DuplicateItemId)
    assert results[0].item_id == "msg_x_0"
    assert results[1] is None
    assert isinstance(results[2], ConversationMissing)
    assert await _all_ids(store, "conv_c") == ["msg_x_0", "msg_good_0", "msg_good_1"]


async def test_other_owners_see_nothing(store: Store) -> None:
    await store.create_conversation(OWNER, ConversationRow("conv_d", 1, {}), _items("d", 1))
    with pytest.raises(ConversationMissing):
        await store.get_conversation("someone-else", "conv_d")
    with pytest.raises(ConversationMissing):
        await store.append_items("someone-else", "conv_d", _items("e", 1))
    assert await _all_ids(store, "conv_d") == ["msg_d_0"]


async def test_data_survives_a_restart(store_url: str) -> None:
    store = open_store(store_url)
    await store.start()
    await store.create_conversation(OWNER, ConversationRow("conv_e", 7, {"k": "v"}), _items("e", 3))
    await store.close()
    reopened = open_store(store_url)
    await reopened.start()
    try:
        row = await reopened.get_conversation(OWNER, "conv_e")
        assert row == ConversationRow("conv_e", 7, {"k": "v"})
        assert await _all_ids(reopened, "conv_e") == ["msg_e_0", "msg_e_1", "msg_e_2"]
    finally:
        await reopened.close()
