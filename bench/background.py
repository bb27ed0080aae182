"""Background responses through the database queue, with an instant model (the fake
upstream): `convostack serve` on SQLite, then on a throwaway PostgreSQL.

- `throughput`: `--turns` background turns created by `--clients` concurrent clients as
  fast as they can, then each polled until it completed: turns per second from the
  first create to the last completion (the worker runs `background_concurrency` at once);
- `queue_latency`: sequential background streams, from sending the create to receiving
  `response.in_progress` (the response was stored queued, a worker claimed it and
  prepared the turn): created -> in_progress as a client sees it (an upper bound: it
  holds the create's round trip), p50/p99;
- `resume`: the full replay of a finished background stream from `starting_after=0`.

    python bench/background.py [--turns 400] [--clients 8] [--samples 100]
                               [--storage sqlite,postgres]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import time

import httpx2
import orjson
from common import (
    Client,
    JSONDict,
    convostack_serve,
    emit,
    exit_on_sigterm,
    fake_upstream,
    free_port,
    load_average,
    log,
    scratch_dir,
    stats_ms,
    wait_healthy,
)
from pgserver import ThrowawayPostgres

MODEL = "fake-model"


def _create(base: str, count: int) -> list[str]:
    client = Client(base)
    body = {"model": MODEL, "input": "hello", "background": True}
    try:
        return [client.json("POST", "/v1/responses", body)["id"] for _ in range(count)]
    finally:
        client.close()


def _throughput(base: str, turns: int, clients: int) -> JSONDict:
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        batches = list(pool.map(lambda _: _create(base, turns // clients), range(clients)))
    created_s = time.perf_counter() - started
    client = Client(base)
    statuses: dict[str, int] = {}
    for ids in batches:
        for response_id in ids:
            while True:
                status = client.json("GET", f"/v1/responses/{response_id}")["status"]
                if status not in ("queued", "in_progress"):
                    break
                time.sleep(0.002)
            statuses[status] = statuses.get(status, 0) + 1
    elapsed = time.perf_counter() - started
    client.close()
    done = sum(len(ids) for ids in batches)
    return {"turns": done, "statuses": statuses, "create_per_s": round(done / created_s, 1),
            "turns_per_s": round(done / elapsed, 1)}  # fmt: skip


def _stream_events(
    http: httpx2.Client, method: str, path: str, body: JSONDict | None
) -> list[tuple[float, JSONDict]]:
    """(arrival time, event) of each event of a stream."""
    out = []
    with http.stream(method, path, json=body) as streamed:
        for line in streamed.iter_lines():
            if line.startswith("data: "):
                out.append((time.perf_counter(), orjson.loads(line[6:])))
    return out


def _latencies(base: str, samples: int) -> JSONDict:
    queue, resume = [], []
    body = {"model": MODEL, "input": "a few words", "background": True, "stream": True}
    with httpx2.Client(base_url=base, timeout=60) as http:
        for _ in range(samples):
            sent = time.perf_counter()
            events = _stream_events(http, "POST", "/v1/responses", body)
            kinds = {e["type"]: at for at, e in events}
            queue.append(kinds["response.in_progress"] - sent)
            response_id = events[0][1]["response"]["id"]
            started = time.perf_counter()
            again = _stream_events(
                http, "GET", f"/v1/responses/{response_id}?stream=true&starting_after=0", None
            )
            resume.append(time.perf_counter() - started)
            assert len(again) == len(events) - 1
    return {"queue_latency_ms": stats_ms(queue), "resume_ms": stats_ms(resume),
            "events_per_stream": len(events)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--storage", default="sqlite,postgres")
    args = parser.parse_args()
    exit_on_sigterm()
    postgres = ThrowawayPostgres()
    results = []
    with scratch_dir("convostack-bench-bg-") as scratch:
        upstream_port = free_port()
        upstream = fake_upstream(upstream_port, scratch)
        try:
            for storage in args.storage.split(","):
                db = postgres.database() if storage == "postgres" else None
                port = free_port()
                home = scratch / storage
                server = convostack_serve(
                    port, home, f"http://127.0.0.1:{upstream_port}/v1", scratch, db=db
                )
                base = f"http://127.0.0.1:{port}"
                try:
                    wait_healthy(server, base + "/v1/health")
                    log(f"{storage}: throughput")
                    throughput = _throughput(base, args.turns, args.clients)
                    result = {"storage": storage, "throughput": throughput}
                    log(f"{storage}: latencies")
                    result.update(_latencies(base, args.samples))
                    results.append(result)
                finally:
                    server.stop()
        finally:
            upstream.stop()
            postgres.stop()
    emit({"benchmark": "background", "load_average": load_average(), "clients": args.clients,
          "results": results})  # fmt: skip


if __name__ == "__main__":
    main()
