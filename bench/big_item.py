"""A tiny item's reads next to a big one (issue 12, point 2), at the store, in-process.

One conversation holds tiny items around one big item (20 MB by default, the size an
`image_url` data URL can reach under the body limit); another conversation holds tiny
items only. Timed, each many times: a GET of a tiny item stored right after the big one,
the same GET in the conversation without a big item, and the conversation's size lookup
an append makes. Prints min/median/p99 per operation and the 1-minute load average.

    .venv/bin/python bench/big_item.py                       # SQLite, a temp file
    .venv/bin/python bench/big_item.py --db postgresql://...  # PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from common import emit, load_average, stats_ms

from convostack.storage import open_store
from convostack.storage.base import ConversationRow, NewItem, Store

OWNER = "bench"


def _item(item_id: str, size: int = 0) -> NewItem:
    body = b'{"id":"%s","type":"message","pad":"%s"}' % (item_id.encode(), b"x" * size)
    return NewItem(item_id, "message", body)


async def _fill(store: Store, big_bytes: int, neighbours: int) -> None:
    for name in ("conv_big", "conv_small"):
        await store.create_conversation(OWNER, ConversationRow(name, 1, {}), [])
        before = [_item(f"msg_{name}_a{n}") for n in range(neighbours)]
        await store.append_items(OWNER, name, before)
        middle = [_item(f"msg_{name}_big", big_bytes if name == "conv_big" else 0)]
        await store.append_items(OWNER, name, middle)
        after = [_item(f"msg_{name}_b{n}") for n in range(neighbours)]
        await store.append_items(OWNER, name, after)


async def _time(rounds: int, operation: Callable[[], Awaitable[object]]) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await operation()
        samples.append(time.perf_counter() - started)
    return samples


async def _measure(store: Store, name: str, rounds: int) -> dict[str, object]:
    async def get() -> None:
        await store.get_item(OWNER, name, f"msg_{name}_b0")

    async def page() -> None:
        await store.list_items(OWNER, name, after=f"msg_{name}_big", limit=20, order="asc")

    async def append() -> None:
        await store.append_items(OWNER, name, [_item(f"msg_{time.perf_counter_ns()}")])

    return {
        f"get_tiny_{name}": stats_ms(await _time(rounds, get)),
        f"list_20_after_big_{name}": stats_ms(await _time(rounds, page)),
        f"append_one_{name}": stats_ms(await _time(rounds // 4, append)),
    }


async def main(url: str, big_mb: float, rounds: int) -> None:
    store = open_store(url)
    await store.start()
    try:
        await _fill(store, int(big_mb * 2**20), neighbours=50)
        results: dict[str, object] = {}
        for name in ("conv_big", "conv_small"):
            results.update(await _measure(store, name, rounds))
        emit({"db": url.split("@")[-1], "big_mb": big_mb, "load": load_average(), **results})
    finally:
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database URL; default a SQLite file in a temp folder")
    parser.add_argument("--big-mb", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.db or f"sqlite:///{Path(folder) / 'big.db'}"
        asyncio.run(main(url, args.big_mb, args.rounds))
