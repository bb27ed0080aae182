"""What context management costs a turn on a 1,000-item conversation, with an instant
model (the fake upstream): the app in-process (as bench/asgi_cost.py drives it), each turn
timed on the wall clock and the process's CPU clock.

- `plain`: a turn with no context management (the whole history goes to the model);
- `checked`: `context_management` set with a threshold the turn does not reach (the cost
  of estimating the request's size);
- `compacting`: a threshold every turn passes (a summary written first, by a second model
  call, from the history since the last summary);
- `after`: plain turns on a conversation whose history a summary already stands for.

    python bench/compaction_cost.py [--items 1000] [--turns 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from asgi_cost import _call
from common import (
    JSONDict,
    emit,
    exit_on_sigterm,
    fake_upstream,
    free_port,
    load_average,
    log,
    scratch_dir,
)

from convostack.app import create_app
from convostack.config import Config


async def run(upstream: str, home: Path, items: int, turns: int) -> JSONDict:
    app = create_app(Config(home=home, upstream=upstream, max_items_per_conversation=100_000))
    out: JSONDict = {}
    async with app.lifespan():

        async def post(path: str, body: Any) -> Any:
            status, raw = await _call(app, "POST", path, json.dumps(body).encode())
            assert status == 200, raw[:300]
            return json.loads(raw)

        async def conversation() -> str:
            conv: str = (await post("/v1/conversations", {}))["id"]
            message = {"type": "message", "role": "user", "content": "a line of history " * 4}
            for _ in range(items // 20):
                await post(f"/v1/conversations/{conv}/items", {"items": [message] * 20})
            return conv

        async def timed(name: str, conv: str, extra: JSONDict) -> None:
            wall, cpu = [], []
            for n in range(turns):
                started, used = time.perf_counter(), time.process_time()
                await post("/v1/responses", {"model": "fake-model", "input": f"turn {n}",
                                             "conversation": conv, **extra})  # fmt: skip
                wall.append(time.perf_counter() - started)
                cpu.append(time.process_time() - used)
            out[name] = {"wall_ms": round(statistics.median(wall) * 1000, 2),
                         "cpu_ms": round(statistics.median(cpu) * 1000, 2)}  # fmt: skip
            log(f"  {name}: {out[name]}")

        def managed(threshold: int) -> JSONDict:
            return {"context_management": [{"type": "compaction", "compact_threshold": threshold}]}

        await timed("plain", await conversation(), {})
        await timed("checked", await conversation(), managed(10_000_000))
        compacted = await conversation()
        await timed("compacting", compacted, managed(10))
        await timed("after", compacted, {})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=30)
    args = parser.parse_args()
    exit_on_sigterm()
    with scratch_dir("convostack-compaction-") as work:
        port = free_port()
        upstream = fake_upstream(port, work / "logs")
        try:
            import uvloop

            result = uvloop.run(
                run(f"http://127.0.0.1:{port}/v1", work / "home", args.items, args.turns)
            )
        finally:
            upstream.stop()
    emit({"benchmark": "compaction_cost", "load": load_average(), "items": args.items, **result})


if __name__ == "__main__":
    main()
