"""How long one heavy request holds the event loop (issue 12, point 1), in-process.

The app runs in this process on its own loop (the tests' library target) against the
fake upstream; a thread sends `GET /v1/health` back to back while the main thread sends
heavy turns: an input of 2,000 message items, and a turn on a 10,000-item conversation.
The longest health call is the longest the loop was held (plus a call's own cost).
`--unsliced` measures the code as it was: validation in one go and the history turned
into messages on the loop.

    .venv/bin/python bench/loop_stall.py [--unsliced]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import httpx2
from common import emit, load_average, stats_ms

from convostack.config import Config
from convostack.conversations import service
from convostack.responses import turn
from convostack.testing.fake_upstream import fake_upstream_server
from convostack.testing.stack import library_target
from convostack.testing.upstream import FAKE_MODEL

HISTORY_ITEMS = 10_000


def _probe(http: httpx2.Client, stop: threading.Event, samples: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        http.get("/v1/health")
        samples.append(time.perf_counter() - started)


def _heavy(http: httpx2.Client, body: dict[str, object], probes: int) -> dict[str, object]:
    samples: list[float] = []
    stop = threading.Event()
    prober = threading.Thread(target=_probe, args=(http, stop, samples))
    prober.start()
    time.sleep(0.2)
    quiet = len(samples)
    taken = []
    for _ in range(probes):
        started = time.perf_counter()
        response = http.post("/v1/responses", json=body)
        taken.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    stop.set()
    prober.join()
    return {"turn": stats_ms(taken), "health_quiet": stats_ms(samples[:quiet]),
            "health_during": stats_ms(samples[quiet:])}  # fmt: skip


def main(unsliced: bool) -> None:
    if unsliced:
        service.SLICE_SECONDS = 3600.0
        turn.INLINE_ITEMS = 10**9
    with tempfile.TemporaryDirectory() as folder, fake_upstream_server(models=[FAKE_MODEL]) as url:
        config = Config(
            db=f"sqlite:///{Path(folder) / 'stall.db'}",
            inference_mode="live",
            providers=[{"type": "openai_compat", "id": "fake", "base_url": url}],
        )
        with library_target(config) as target, target.http_client() as http:
            created = http.post("/v1/conversations", json={}).json()["id"]
            for start in range(0, HISTORY_ITEMS - 20, 20):
                items = [{"role": "user", "content": f"m{n}"} for n in range(start, start + 20)]
                http.post(f"/v1/conversations/{created}/items", json={"items": items})
            many = [{"role": "user", "content": f"input {n}"} for n in range(2000)]
            emit({
                "benchmark": "loop_stall", "unsliced": unsliced, "load": load_average(),
                "input_2000_items": _heavy(http, {"model": FAKE_MODEL, "input": many}, 5),
                "history_10000_items": _heavy(
                    http, {"model": FAKE_MODEL, "input": [], "conversation": created,
                           "store": False}, 1),
            })  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unsliced", action="store_true")
    main(parser.parse_args().unsliced)
