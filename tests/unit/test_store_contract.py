"""The store protocol's promises, on every backend (fixtures in conftest.py): owner
scoping, tombstones and cursors, exact bytes, all-or-nothing writes, response chains and
response pages."""

from __future__ import annotations

import asyncio

import pytest

from convostack.storage.base import (
    ConversationFull,
    ConversationMissing,
    ConversationRow,
    CursorMissing,
    DuplicateItemId,
    ItemMissing,
    NewItem,
    ResponseMissing,
    Store,
    StoredResponse,
    Turn,
)

OWNER = "tenant"
OTHER = "someone-else"


def _item(item_id: str, body: bytes | None = None) -> NewItem:
    return NewItem(id=item_id, type="message", body=body or f'{{"id":"{item_id}"}}'.encode())


async def _find(store: Store, owner: str, item_id: str) -> bytes:
    """The one item find_items finds; ItemMissing when it finds none."""
    found = await store.find_items(owner, [item_id])
    if item_id not in found:
        raise ItemMissing(item_id)
    return found[item_id]


def _items(*ids: str) -> list[NewItem]:
    return [_item(i) for i in ids]


def _response(
    response_id: str,
    *,
    previous: str | None = None,
    conversation: str | None = None,
    model: str = "m",
    status: str = "completed",
) -> StoredResponse:
    return StoredResponse(
        id=response_id,
        created_at=1,
        model=model,
        status=status,
        conversation_id=conversation,
        previous_response_id=previous,
        body=f'{{"id":"{response_id}","status":"{status}"}}'.encode(),
        input_items=b"[]",
    )


async def _conversation(store: Store, conversation_id: str, *ids: str) -> None:
    await store.create_conversation(
        OWNER, ConversationRow(conversation_id, 5, {"k": "v"}), _items(*ids)
    )


async def _ids(store: Store, conversation_id: str) -> list[str]:
    page = await store.list_items(OWNER, conversation_id, after=None, limit=1000, order="asc")
    return page.ids


async def test_conversation_lifecycle_and_owner_scoping(store: Store) -> None:
    await _conversation(store, "conv_1", "a", "b")
    assert await store.get_conversation(OWNER, "conv_1") == ConversationRow("conv_1", 5, {"k": "v"})
    updated = await store.update_metadata(OWNER, "conv_1", {"x": "1", "a": "2"})
    assert updated.metadata == {"x": "1", "a": "2"}
    assert list(updated.metadata) == ["x", "a"]  # the order given is kept
    for call in (
        store.get_conversation(OTHER, "conv_1"),
        store.update_metadata(OTHER, "conv_1", {}),
        store.delete_conversation(OTHER, "conv_1"),
        store.list_items(OTHER, "conv_1", after=None, limit=10, order="asc"),
        store.get_item(OTHER, "conv_1", "a"),
        store.delete_item(OTHER, "conv_1", "a"),
        store.all_items(OTHER, "conv_1"),
        store.append_items(OTHER, "conv_1", _items("c")),
        store.save_turn(OTHER, Turn("conv_1", _items("d"), _response("resp_x"))),
    ):
        with pytest.raises(ConversationMissing):
            await call
    with pytest.raises(ItemMissing):
        await _find(store, OTHER, "a")
    with pytest.raises(ResponseMissing):
        await store.get_response(OWNER, "resp_x")  # the failed turn stored nothing
    assert await _ids(store, "conv_1") == ["a", "b"]
    await store.delete_conversation(OWNER, "conv_1")
    with pytest.raises(ConversationMissing):
        await store.get_item(OWNER, "conv_1", "a")
    with pytest.raises(ItemMissing):
        await _find(store, OWNER, "a")
    with pytest.raises(ConversationMissing):
        await store.delete_conversation(OWNER, "conv_1")


async def test_bodies_come_back_byte_for_byte(store: Store) -> None:
    odd = '{"z": 1,  "a":[1.0, 2e3, "é\\u00e9"], "z2":{"b":null,"a":true}}'.encode()
    await store.create_conversation(OWNER, ConversationRow("conv_b", 1, {}), [_item("x", odd)])
    await store.append_items(OWNER, "conv_b", [_item("y", odd + b" ")])
    assert await store.get_item(OWNER, "conv_b", "x") == odd
    assert await _find(store, OWNER, "y") == odd + b" "
    assert await store.all_items(OWNER, "conv_b") == [odd, odd + b" "]
    page = await store.list_items(OWNER, "conv_b", after=None, limit=5, order="desc")
    assert page.bodies == [odd + b" ", odd]


async def test_pages_skip_tombstones_and_cursors_may_name_them(store: Store) -> None:
    await _conversation(store, "conv_p", *(f"i{n}" for n in range(6)))
    await store.delete_item(OWNER, "conv_p", "i2")
    with pytest.raises(ItemMissing):
        await store.delete_item(OWNER, "conv_p", "i2")
    with pytest.raises(ItemMissing):
        await store.get_item(OWNER, "conv_p", "i2")
    with pytest.raises(ItemMissing):
        await _find(store, OWNER, "i2")
    first = await store.list_items(OWNER, "conv_p", after=None, limit=2, order="asc")
    assert (first.ids, first.has_more) == (["i0", "i1"], True)
    after_tombstone = await store.list_items(OWNER, "conv_p", after="i2", limit=2, order="asc")
    assert (after_tombstone.ids, after_tombstone.has_more) == (["i3", "i4"], True)
    last = await store.list_items(OWNER, "conv_p", after="i4", limit=2, order="asc")
    assert (last.ids, last.has_more) == (["i5"], False)
    exact = await store.list_items(OWNER, "conv_p", after="i3", limit=2, order="asc")
    assert (exact.ids, exact.has_more) == (["i4", "i5"], False)
    down = await store.list_items(OWNER, "conv_p", after="i3", limit=10, order="desc")
    assert (down.ids, down.has_more) == (["i1", "i0"], False)
    newest = await store.list_items(OWNER, "conv_p", after=None, limit=1, order="desc")
    assert (newest.ids, newest.has_more) == (["i5"], True)
    end = await store.list_items(OWNER, "conv_p", after="i5", limit=3, order="asc")
    assert (end.ids, end.bodies, end.has_more) == ([], [], False)
    with pytest.raises(CursorMissing):
        await store.list_items(OWNER, "conv_p", after="nope", limit=3, order="asc")
    with pytest.raises(ConversationMissing):
        await store.list_items(OWNER, "conv_none", after=None, limit=3, order="asc")
    assert await store.all_items(OWNER, "conv_p") == [
        f'{{"id":"i{n}"}}'.encode() for n in (0, 1, 3, 4, 5)
    ]
    row = await store.delete_item(OWNER, "conv_p", "i0")
    assert row == ConversationRow("conv_p", 5, {"k": "v"})


async def test_an_empty_conversation_lists_empty(store: Store) -> None:
    await store.create_conversation(OWNER, ConversationRow("conv_e", 1, {}), [])
    for order in ("asc", "desc"):
        page = await store.list_items(OWNER, "conv_e", after=None, limit=5, order=order)
        assert (page.ids, page.has_more) == ([], False)
    assert await store.all_items(OWNER, "conv_e") == []


async def test_duplicate_ids_write_nothing(store: Store) -> None:
    with pytest.raises(DuplicateItemId) as created:
        await _conversation(store, "conv_d", "a", "b", "a")
    assert created.value.item_id == "a"
    with pytest.raises(ConversationMissing):
        await store.get_conversation(OWNER, "conv_d")
    await _conversation(store, "conv_d", "a")
    with pytest.raises(DuplicateItemId) as appended:
        await store.append_items(OWNER, "conv_d", _items("n1", "n2", "n2"))
    assert appended.value.item_id == "n2"
    with pytest.raises(DuplicateItemId) as turned:
        await store.save_turn(OWNER, Turn("conv_d", _items("t1", "a"), _response("resp_d")))
    assert turned.value.item_id == "a"
    with pytest.raises(ResponseMissing):
        await store.get_response(OWNER, "resp_d")
    await store.append_items(OWNER, "conv_d", _items("n1"))
    assert await _ids(store, "conv_d") == ["a", "n1"]
    # An id is unique per conversation only.
    await _conversation(store, "conv_d2", "a")


async def test_the_item_limit_counts_live_items_and_writes_nothing_past_it(
    store: Store,
) -> None:
    await _conversation(store, "conv_l", "a", "b", "c")
    with pytest.raises(ConversationFull) as full:
        await store.append_items(OWNER, "conv_l", _items("d", "e"), max_items=4)
    assert full.value.held == 3
    assert await _ids(store, "conv_l") == ["a", "b", "c"]
    await store.delete_item(OWNER, "conv_l", "b")  # a tombstone is not counted
    await store.append_items(OWNER, "conv_l", _items("d", "e"), max_items=4)
    assert await _ids(store, "conv_l") == ["a", "c", "d", "e"]
    with pytest.raises(ConversationFull) as again:
        await store.append_items(OWNER, "conv_l", _items("f"), max_items=4)
    assert again.value.held == 4
    with pytest.raises(ConversationMissing):
        await store.append_items(OWNER, "conv_none", _items("f"), max_items=4)


async def test_appending_after_the_last_item_was_deleted_keeps_the_order(store: Store) -> None:
    await _conversation(store, "conv_t", "a", "b")
    await store.delete_item(OWNER, "conv_t", "b")
    await store.append_items(OWNER, "conv_t", _items("c"))
    page = await store.list_items(OWNER, "conv_t", after="b", limit=5, order="asc")
    assert page.ids == ["c"]
    with pytest.raises(DuplicateItemId):  # a deleted item's id stays taken
        await store.append_items(OWNER, "conv_t", _items("b"))
    assert await _ids(store, "conv_t") == ["a", "c"]


async def test_find_item_takes_the_newest_of_the_owners(store: Store) -> None:
    await store.create_conversation(
        OWNER, ConversationRow("conv_old", 1, {}), [_item("same", b'{"v":1}')]
    )
    await store.create_conversation(
        OTHER, ConversationRow("conv_other", 1, {}), [_item("same", b'{"v":3}')]
    )
    assert await _find(store, OWNER, "same") == b'{"v":1}'
    assert await _find(store, OTHER, "same") == b'{"v":3}'


async def test_turns_are_all_or_nothing_and_adjacent(store: Store) -> None:
    await _conversation(store, "conv_t", "first")
    await store.save_turn(OWNER, Turn("conv_t", _items("in1", "out1"), _response("resp_1")))
    await store.save_turn(OWNER, Turn("conv_t", _items("in2", "out2"), None))  # store=false
    await store.save_turn(OWNER, Turn(None, [], _response("resp_lone")))
    await store.save_turn(OWNER, Turn("conv_t", [], _response("resp_empty")))
    assert await _ids(store, "conv_t") == ["first", "in1", "out1", "in2", "out2"]
    assert (await store.get_response(OWNER, "resp_1")).conversation_id is None  # as given
    assert (await store.get_response(OWNER, "resp_lone")).id == "resp_lone"
    assert (await store.get_response(OWNER, "resp_empty")).id == "resp_empty"
    with pytest.raises(ConversationMissing):
        await store.save_turn(OWNER, Turn("conv_gone", _items("x"), _response("resp_gone")))
    with pytest.raises(ResponseMissing):
        await store.get_response(OWNER, "resp_gone")
    turns = [Turn("conv_t", _items(f"in_{n}", f"out_{n}a", f"out_{n}b"), None) for n in range(40)]
    await asyncio.gather(*(store.save_turn(OWNER, t) for t in turns))
    ids = await _ids(store, "conv_t")
    assert len(ids) == len(set(ids)) == 5 + 3 * 40
    for n in range(40):
        start = ids.index(f"in_{n}")
        assert ids[start : start + 3] == [f"in_{n}", f"out_{n}a", f"out_{n}b"]


async def test_a_stored_response_is_updated_by_id(store: Store) -> None:
    await store.save_turn(OWNER, Turn(None, [], _response("resp_u", status="in_progress")))
    await store.save_turn(OWNER, Turn(None, [], _response("resp_u", status="completed")))
    stored = await store.get_response(OWNER, "resp_u")
    assert (stored.status, stored.body) == ("completed", b'{"id":"resp_u","status":"completed"}')


async def test_response_chains_walk_back_to_a_deleted_ancestor(store: Store) -> None:
    previous = None
    for n in range(5):
        await store.save_turn(OWNER, Turn(None, [], _response(f"r{n}", previous=previous)))
        previous = f"r{n}"
    chain = await store.response_chain(OWNER, "r4")
    assert [r.id for r in chain] == ["r0", "r1", "r2", "r3", "r4"]
    assert chain[1] == _response("r1", previous="r0")
    await store.delete_response(OWNER, "r1")
    assert [r.id for r in await store.response_chain(OWNER, "r4")] == ["r2", "r3", "r4"]
    with pytest.raises(ResponseMissing):
        await store.response_chain(OWNER, "r1")
    with pytest.raises(ResponseMissing):
        await store.response_chain(OTHER, "r4")
    with pytest.raises(ResponseMissing):
        await store.delete_response(OWNER, "r1")
    with pytest.raises(ResponseMissing):
        await store.get_response(OTHER, "r4")


async def test_response_pages(store: Store) -> None:
    for n in range(5):
        model = "a" if n % 2 == 0 else "b"
        await store.save_turn(OWNER, Turn(None, [], _response(f"r{n}", model=model)))
    await store.save_turn(OTHER, Turn(None, [], _response("theirs")))
    page = await store.list_responses(OWNER, after=None, limit=2, order="desc", model=None)
    assert (page.ids, page.has_more) == (["r4", "r3"], True)
    assert page.bodies[0] == b'{"id":"r4","status":"completed"}'
    page = await store.list_responses(OWNER, after="r3", limit=5, order="desc", model=None)
    assert (page.ids, page.has_more) == (["r2", "r1", "r0"], False)
    page = await store.list_responses(OWNER, after="r0", limit=2, order="asc", model="a")
    assert (page.ids, page.has_more) == (["r2", "r4"], False)
    page = await store.list_responses(OWNER, after="r4", limit=2, order="asc", model=None)
    assert (page.ids, page.has_more) == ([], False)
    with pytest.raises(CursorMissing):
        await store.list_responses(OWNER, after="theirs", limit=2, order="asc", model=None)
    empty = await store.list_responses("nobody", after=None, limit=2, order="asc", model=None)
    assert (empty.ids, empty.has_more) == ([], False)


async def test_any_item_id_round_trips_and_keys_no_row_can_have_find_nothing(
    store: Store,
) -> None:
    odd = ["msg_\x00nul", "msg_é😀", "msg_'; DROP TABLE items; --", "msg_\\x00"]
    await _conversation(store, "conv_o", *odd)
    assert await _ids(store, "conv_o") == odd
    for item_id in odd:
        assert await store.get_item(OWNER, "conv_o", item_id) == _item(item_id).body
        assert await _find(store, OWNER, item_id) == _item(item_id).body
    page = await store.list_items(OWNER, "conv_o", after=odd[0], limit=5, order="asc")
    assert page.ids == odd[1:]
    with pytest.raises(DuplicateItemId) as duplicate:
        await store.append_items(OWNER, "conv_o", _items("msg_new", odd[0]))
    assert duplicate.value.item_id == odd[0]
    await store.delete_item(OWNER, "conv_o", odd[0])
    with pytest.raises(ItemMissing):
        await store.get_item(OWNER, "conv_o", odd[0])
    nul = "conv_\x00"
    for call in (
        store.get_conversation(OWNER, nul),
        store.append_items(OWNER, nul, _items("x")),
        store.list_items(OWNER, nul, after=None, limit=5, order="asc"),
        store.save_turn(OWNER, Turn(nul, _items("y"), _response("resp_nul"))),
    ):
        with pytest.raises(ConversationMissing):
            await call
    with pytest.raises(CursorMissing):
        await store.list_items(OWNER, "conv_o", after="msg_\x00none", limit=5, order="asc")
    with pytest.raises(ResponseMissing):
        await store.get_response(OWNER, "resp_\x00")
    with pytest.raises(ResponseMissing):
        await store.response_chain(OWNER, "resp_\x00")
    await store.save_turn(OWNER, Turn(None, [], _response("resp_ok")))
    with pytest.raises(CursorMissing):
        await store.list_responses(OWNER, after="resp_\x00", limit=5, order="asc", model=None)
    page_of = await store.list_responses(OWNER, after=None, limit=5, order="asc", model="m\x00")
    assert (page_of.ids, page_of.has_more) == ([], False)


async def test_history_since_reads_what_was_appended_and_everything_after_a_delete(
    store: Store,
) -> None:
    await _conversation(store, "conv_h", "a", "b")
    whole = await store.history_since(OWNER, "conv_h", 0, 0)
    assert (whole.next_seq, whole.deleted, whole.since) == (2, 0, 0)
    assert whole.bodies == [b'{"id":"a"}', b'{"id":"b"}']
    await store.append_items(OWNER, "conv_h", _items("c", "d"))
    tail = await store.history_since(OWNER, "conv_h", 2, 0)
    assert (tail.next_seq, tail.deleted, tail.since) == (4, 0, 2)
    assert tail.bodies == [b'{"id":"c"}', b'{"id":"d"}']
    unchanged = await store.history_since(OWNER, "conv_h", 4, 0)
    assert (unchanged.next_seq, unchanged.since, unchanged.bodies) == (4, 4, [])
    # A delete (even of an item the reader has not seen yet) changes the version: the
    # whole history again.
    await store.delete_item(OWNER, "conv_h", "a")
    again = await store.history_since(OWNER, "conv_h", 4, 0)
    assert (again.next_seq, again.deleted, again.since) == (4, 1, 0)
    assert again.bodies == [b'{"id":"b"}', b'{"id":"c"}', b'{"id":"d"}']
    # A version the reader cannot have seen (past the end) is read from the start.
    assert (await store.history_since(OWNER, "conv_h", 9, 1)).since == 0
    with pytest.raises(ConversationMissing):
        await store.history_since(OTHER, "conv_h", 0, 0)
    with pytest.raises(ConversationMissing):
        await store.history_since(OWNER, "conv_none", 0, 0)


async def test_responses_version_counts_the_owners_responses_and_their_sizes(
    store: Store,
) -> None:
    ids = ["v0", "v1", "v2"]
    for n, response_id in enumerate(ids):
        await store.save_turn(
            OWNER, Turn(None, [], _response(response_id, previous=ids[n - 1] if n else None))
        )
    sizes = [len(_response(i).body) for i in ids]
    assert await store.responses_version(OWNER, ids) == (3, sum(sizes))
    assert await store.responses_version(OWNER, [*ids, "unknown"]) == (3, sum(sizes))
    assert await store.responses_version(OTHER, ids) == (0, 0)
    assert await store.responses_version(OWNER, []) == (0, 0)
    await store.delete_response(OWNER, "v1")
    assert await store.responses_version(OWNER, ids) == (2, sizes[0] + sizes[2])
    # Stored again (a new status, a new body): the size says so.
    await store.save_turn(OWNER, Turn(None, [], _response("v2", previous="v1", status="failed")))
    count, size = await store.responses_version(OWNER, ids)
    assert (count, size) == (2, sizes[0] + len(_response("v2", status="failed").body))
    assert size != sizes[0] + sizes[2]
