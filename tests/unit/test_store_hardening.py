"""Issue 12 at the store, on every backend: a big body is never read to find a small one,
a turn's append holds the item limit under concurrency, and a request's references are
resolved in one call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest

from convostack.conversations.service import ConversationService
from convostack.storage import open_store
from convostack.storage.base import (
    ConversationFull,
    ConversationRow,
    CopiesTooLarge,
    NewItem,
    ResponseMissing,
    Store,
    StoredResponse,
    Turn,
)
from convostack.storage.quotas import QuotaExceeded, Quotas

OWNER = "tenant"
OTHER = "someone-else"
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


async def test_find_items_takes_the_newest_of_each_id_in_one_call(store: Store) -> None:
    await store.create_conversation(
        OWNER, ConversationRow("conv_a", 1, {}), [_item("x"), _item("\x00nul"), _item("gone")]
    )
    await store.create_conversation(OTHER, ConversationRow("conv_o", 1, {}), [_item("theirs")])
    await store.delete_item(OWNER, "conv_a", "gone")
    found = await store.find_items(OWNER, ["x", "missing", "x", "theirs", "gone", "\x00nul"])
    assert found == {"x": _item("x").body, "\x00nul": _item("\x00nul").body}
    many = [f"m{n}" for n in range(1200)]  # more than one SQLite batch
    await store.create_conversation(
        OWNER, ConversationRow("conv_m", 1, {}), [_item(i) for i in many]
    )
    assert list(await store.find_items(OWNER, many)) == many
    # Copies are counted (each as often as named) before any body is read.
    size = len(_item("x").body)
    assert await store.find_items(OWNER, ["x", "x", "missing"], max_bytes=2 * size)
    with pytest.raises(CopiesTooLarge) as refused:
        await store.find_items(OWNER, ["x", "x", "x", "missing"], max_bytes=2 * size)
    assert refused.value.size == 3 * size


class _CountingStore:
    """A store that counts the lookups of referenced items, passing them on."""

    def __init__(self, store: Store):
        self.store = store
        self.lookups = 0

    async def find_items(
        self, owner: str, item_ids: Sequence[str], *, max_bytes: int | None = None
    ) -> dict[str, bytes]:
        self.lookups += 1
        return await self.store.find_items(owner, item_ids, max_bytes=max_bytes)


async def test_a_requests_references_are_resolved_in_one_store_call(store: Store) -> None:
    stored = [
        NewItem(f"rs_{n}", "reasoning", b'{"type":"reasoning","id":"rs_%d","summary":[]}' % n)
        for n in range(300)
    ]
    await store.create_conversation(OWNER, ConversationRow("conv_r", 1, {}), stored)
    counting = _CountingStore(store)
    service = ConversationService(counting)  # type: ignore[arg-type]
    raw = [{"type": "item_reference", "id": f"rs_{n % 300}"} for n in range(600)]
    prepared = await service.prepare_items(
        OWNER, [*raw, {"role": "user", "content": "hi"}], "input"
    )
    assert counting.lookups == 1
    assert len(prepared.items) == 601
    copy = prepared.items[300]
    assert copy.type == "reasoning"
    assert copy.id.startswith("rs_")
    assert copy.id != "rs_0"
    assert copy.body.startswith(b'{"type":"reasoning","summary":[],"id":"rs_')


async def test_validating_many_items_never_holds_the_loop_long() -> None:
    # 5,000 items take about 50 ms of CPU to validate; in one go (as before), no other
    # request of the process could run meanwhile. Now the loop is handed back every 2 ms:
    # counted as the turns another task gets meanwhile (wall-clock gaps would count the
    # time a loaded machine gives other processes).
    service = ConversationService(_CountingStore(None))  # type: ignore[arg-type]
    raw = [
        {"role": "user", "content": [{"type": "input_text", "text": f"message {n}"}]}
        for n in range(5000)
    ]
    await service.prepare_items(OWNER, raw[:10], "input")  # once-per-process set-up
    turns = 0
    done = asyncio.Event()

    async def other_request() -> None:
        nonlocal turns
        while not done.is_set():
            await asyncio.sleep(0)
            turns += 1

    other = asyncio.create_task(other_request())
    await asyncio.sleep(0)
    turns = 0
    cpu = time.process_time()
    prepared = await service.prepare_items(OWNER, raw, "input")
    cpu = time.process_time() - cpu
    done.set()
    await other
    assert len(prepared.items) == 5000
    assert turns >= 5, f"{turns} turns for others in {cpu * 1000:.0f} ms of validation"


async def _open(url: str, quotas: Quotas | None) -> Store:
    opened = open_store(url, quotas)
    await opened.start()
    return opened


async def test_quotas_per_principal_hold_under_concurrency(store_url: str) -> None:
    store = await _open(store_url, Quotas(conversations=3, items=25, bytes=50_000))
    try:
        await store.create_conversation(OWNER, ConversationRow("conv_1", 1, {}), _items(10))
        await store.create_conversation(OWNER, ConversationRow("conv_2", 1, {}), [])
        await store.create_conversation(OTHER, ConversationRow("conv_o", 1, {}), _items(20))

        async def append(n: int) -> str:
            try:
                await store.append_items(OWNER, f"conv_{1 + n % 2}", [_item(f"c{n}")])
            except QuotaExceeded as exc:
                return exc.what
            return "ok"

        outcomes = await asyncio.gather(*(append(n) for n in range(30)))
        assert outcomes.count("ok") == 15
        assert set(outcomes) == {"ok", "items"}
        turn = Turn("conv_2", [_item("t")], _response("r_t", "conv_2"))
        with pytest.raises(QuotaExceeded) as refused:
            await store.save_turn(OWNER, turn)
        assert (refused.value.what, refused.value.limit, refused.value.held) == ("items", 25, 25)
        with pytest.raises(ResponseMissing):  # nothing of a refused turn is kept
            await store.get_response(OWNER, "r_t")
        # Deleting frees room: an item, then a whole conversation.
        await store.delete_item(OWNER, "conv_1", "i0")
        await store.append_items(OWNER, "conv_1", [_item("after_delete")])
        await store.create_conversation(OWNER, ConversationRow("conv_3", 1, {}), [])
        with pytest.raises(QuotaExceeded) as refused:
            await store.create_conversation(OWNER, ConversationRow("conv_4", 1, {}), [])
        assert refused.value.what == "conversations"
        await store.delete_conversation(OWNER, "conv_1")
        await store.create_conversation(OWNER, ConversationRow("conv_4", 1, {}), [])
        with pytest.raises(QuotaExceeded) as refused:
            await store.append_items(OWNER, "conv_4", [_item("big", 50_000)])
        assert refused.value.what == "bytes"
    finally:
        await store.close()


async def test_usage_is_counted_again_when_quotas_are_turned_on(store_url: str) -> None:
    store = await _open(store_url, None)  # no quotas: no usage kept
    try:
        await store.create_conversation(OWNER, ConversationRow("conv_1", 1, {}), _items(8))
        await store.delete_item(OWNER, "conv_1", "i3")
    finally:
        await store.close()
    store = await _open(store_url, Quotas(items=9))
    try:
        await store.append_items(OWNER, "conv_1", _items(2, prefix="more"))
        with pytest.raises(QuotaExceeded) as refused:
            await store.append_items(OWNER, "conv_1", [_item("one_too_many")])
        assert refused.value.held == 9
    finally:
        await store.close()


def _items(count: int, prefix: str = "i") -> list[NewItem]:
    return [_item(f"{prefix}{n}") for n in range(count)]
