"""The store's conversation list (GET /v1/conversations), on every backend: creation
order under one owner, cursors, the metadata filter, owner scoping."""

from __future__ import annotations

import pytest

from convostack.storage.base import ConversationRow, CursorMissing, Store

OWNER = "tenant"
OTHER = "someone-else"


async def _create(store: Store, owner: str, conversation_id: str, **metadata: str) -> None:
    # Every conversation in the same second: the order must not come from the clock.
    await store.create_conversation(owner, ConversationRow(conversation_id, 7, metadata), [])


async def _ids(store: Store, **kwargs: object) -> tuple[list[str], bool]:
    args: dict[str, object] = {"after": None, "limit": 20, "order": "desc", "metadata": {}}
    args.update(kwargs)
    page = await store.list_conversations(OWNER, **args)  # type: ignore[arg-type]
    return [row.id for row in page.rows], page.has_more


async def test_newest_first_in_pages_and_oldest_first_on_request(store: Store) -> None:
    for n in range(5):
        await _create(store, OWNER, f"conv_{n}", n=str(n))
    await _create(store, OTHER, "conv_theirs")
    assert await _ids(store, limit=2) == (["conv_4", "conv_3"], True)
    assert await _ids(store, limit=2, after="conv_3") == (["conv_2", "conv_1"], True)
    assert await _ids(store, limit=2, after="conv_1") == (["conv_0"], False)
    assert await _ids(store, order="asc", limit=3) == (["conv_0", "conv_1", "conv_2"], True)
    assert await _ids(store, order="asc", after="conv_4") == ([], False)
    page = await store.list_conversations(OWNER, after=None, limit=1, order="desc", metadata={})
    assert page.rows == [ConversationRow("conv_4", 7, {"n": "4"})]


async def test_the_metadata_filter_keeps_rows_holding_every_pair(store: Store) -> None:
    await _create(store, OWNER, "conv_a", project="x", stage="draft")
    await _create(store, OWNER, "conv_b", project="x", stage="final")
    await _create(store, OWNER, "conv_c", project="y")
    await _create(store, OWNER, "conv_d", **{'we"ird.$[key]': "v"})
    await _create(store, OTHER, "conv_theirs", project="x")
    assert await _ids(store, metadata={"project": "x"}) == (["conv_b", "conv_a"], False)
    assert await _ids(store, metadata={"project": "x", "stage": "draft"}) == (["conv_a"], False)
    assert await _ids(store, metadata={"project": "z"}) == ([], False)
    assert await _ids(store, metadata={'we"ird.$[key]': "v"}) == (["conv_d"], False)
    assert await _ids(store, metadata={"project": "x"}, limit=1) == (["conv_b"], True)
    # The cursor is a position: it may name a conversation the filter leaves out.
    assert await _ids(store, metadata={"project": "x"}, after="conv_c") == (
        ["conv_b", "conv_a"],
        False,
    )


async def test_cursors_of_other_owners_and_deleted_conversations_are_missing(
    store: Store,
) -> None:
    await _create(store, OWNER, "conv_mine")
    await _create(store, OTHER, "conv_theirs")
    await _create(store, OWNER, "conv_gone")
    await store.delete_conversation(OWNER, "conv_gone")
    assert await _ids(store) == (["conv_mine"], False)
    for cursor in ("conv_theirs", "conv_gone", "conv_\x00"):
        with pytest.raises(CursorMissing):
            await _ids(store, after=cursor)
    empty = await store.list_conversations("nobody", after=None, limit=5, order="asc", metadata={})
    assert (empty.rows, empty.has_more) == ([], False)
