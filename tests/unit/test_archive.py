"""Conversations to JSONL and back, on every backend: ids, creation times, metadata,
items and the conversations' order all survive, so export -> import -> export gives the
same bytes; an id already there is skipped; a bad line is named."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from convostack.cli import main
from convostack.storage.base import ConversationRow, NewItem, Store
from convostack.terminal import archive

OWNER = "tenant"


def _item(item_id: str, **body: object) -> NewItem:
    return NewItem(id=item_id, type=str(body["type"]), body=orjson.dumps({"id": item_id, **body}))


async def _fill(store: Store) -> None:
    await store.create_conversation(
        OWNER,
        ConversationRow("conv_b", 200, {"topic": "ünïcode", "n": "1"}),
        [
            _item("msg_1", type="message", role="user",
                  content=[{"type": "input_text", "text": "hi \u2603 \"quoted\""}]),
            _item("fc_1", type="function_call", call_id="c", name="f", arguments="{}"),
            _item("fco_1", type="function_call_output", call_id="c", output="1.5e-7"),
        ],
    )  # fmt: skip
    await store.create_conversation(OWNER, ConversationRow("conv_a", 100, {}), [])
    await store.create_conversation("someone-else", ConversationRow("conv_x", 1, {}), [])
    await store.delete_item(OWNER, "conv_b", "fc_1")  # a tombstone is not exported


async def _export(store: Store) -> bytes:
    return b"".join(
        [await archive.export_line(store, OWNER, r) async for r in archive.rows(store, OWNER)]
    )


async def test_export_import_export_is_byte_for_byte(store: Store) -> None:
    await _fill(store)
    exported = await _export(store)
    lines = exported.splitlines()
    # Creation order (conv_b first), not created_at or id order.
    assert [orjson.loads(line)["id"] for line in lines] == ["conv_b", "conv_a"]
    assert [i["id"] for i in orjson.loads(lines[0])["items"]] == ["msg_1", "fco_1"]
    for row in [r async for r in archive.rows(store, OWNER)]:
        await store.delete_conversation(OWNER, row.id)
    result = await archive.import_lines(store, OWNER, lines)
    assert (result.imported, result.skipped) == (2, [])
    assert await _export(store) == exported
    assert await store.get_conversation(OWNER, "conv_b") == ConversationRow(
        "conv_b", 200, {"topic": "ünïcode", "n": "1"}
    )
    again = await archive.import_lines(store, OWNER, lines)
    assert (again.imported, again.skipped) == (0, ["conv_b", "conv_a"])


async def test_a_line_that_is_not_a_conversation_is_named(store: Store) -> None:
    with pytest.raises(archive.ArchiveError, match="line 2"):
        await archive.import_lines(store, OWNER, [b"", b'{"id": "conv_1"}'])


def test_the_commands_round_trip_a_sqlite_database(tmp_path: Path) -> None:
    import asyncio

    from convostack.storage import open_store

    source, target = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"

    async def fill() -> None:
        store = open_store(source)
        await store.start()
        try:
            await _fill(store)
        finally:
            await store.close()

    asyncio.run(fill())
    runner = CliRunner()
    common = ["--principal", OWNER, "--db"]
    exported = runner.invoke(main, ["conversations", "export", *common, source])
    assert exported.exit_code == 0, exported.output
    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(exported.stdout_bytes)
    imported = runner.invoke(main, ["conversations", "import", str(dump), *common, target])
    assert imported.exit_code == 0, imported.output
    assert "2 conversation(s) imported" in imported.stderr
    again = runner.invoke(main, ["conversations", "export", *common, target])
    assert again.stdout_bytes == exported.stdout_bytes
    one = runner.invoke(main, ["conversations", "export", "conv_a", *common, target])
    assert one.stdout_bytes == exported.stdout_bytes.splitlines(keepends=True)[1]
    listed = runner.invoke(main, ["conversations", "list", *common, target])
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["conv_a", "conv_b"]
    shown = runner.invoke(main, ["conversations", "show", "conv_b", *common, target])
    assert shown.stdout.splitlines() == [
        'user: hi \u2603 "quoted"',
        "[function_call_output] 1.5e-7",
    ]
    missing = runner.invoke(main, ["conversations", "show", "conv_nope", *common, target])
    assert missing.exit_code != 0
    assert "No conversation 'conv_nope'" in missing.output
