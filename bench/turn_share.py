"""convostack's own share of a turn, by conversation length, against the instant fake
upstream: turns on conversations of 10, 100, 1,000 and 10,000 items, one sequential
client, and after each turn the server's own metrics (`metrics: true`) read back:

- `turn`: the client's time for the whole turn;
- `upstream`: the server's time in its model call (`convostack_upstream_duration_seconds`,
  the request sent, the upstream's work, the answer read);
- `share`: the server's time for the request (`convostack_request_duration_seconds`) less
  its model call: reading and converting the history, the tools, keeping the turn;
- `upstream_alone`: the fake upstream's own time for a request as long, sent directly.

The first turn on each conversation reads the whole history (nothing is kept yet: a
server that just started, or a conversation not served lately); the turns after it are
what a conversation in use pays. Both are reported.

    python bench/turn_share.py [--sizes 10,100,1000,10000] [--turns 30]
                               [--storage sqlite|postgres] [--chains 100,1000]

`--chains`: the same for `previous_response_id` chains of that many items, built turn by
turn first (so long chains take a while to build on a server that reads them whole).
"""

from __future__ import annotations

import argparse
import json
import os
import re

import common as bench
from common import Client, JSONDict, log, stats_ms
from latency import ECHO_COUNT, SIZES, _upstream_alone
from targets import OURS, Target, new_conversations, running, seed_items

_SUM = re.compile(rb"^(convostack_\w+)_sum\{([^}]*)\} (\S+)$", re.MULTILINE)


def _seconds(client: Client) -> tuple[float, float]:
    """The server's total seconds in POST /v1/responses requests, and in model calls."""
    _, text = client.call("GET", "/metrics")
    turns = upstream = 0.0
    for name, labels, value in _SUM.findall(text):
        if name == b"convostack_request_duration_seconds" and b'"/v1/responses"' in labels:
            turns += float(value)
        elif name == b"convostack_upstream_duration_seconds":
            upstream += float(value)
    return turns, upstream


def _continued(target: Target, previous: str | None) -> JSONDict:
    return {"model": target.model, "input": "hello", "previous_response_id": previous}


def _chain(client: Client, target: Target, responses: int) -> str | None:
    """A previous_response_id chain of `responses` turns (2 items each); its last id."""
    previous = None
    for _ in range(responses):
        previous = client.json("POST", "/v1/responses", _continued(target, previous))["id"]
    return previous


def by_length(
    target: Target, upstream: Client, size: int, turns: int, *, chain: bool = False
) -> JSONDict:
    """Turns on a conversation of `size` items, or (`chain`) continuing a chain of
    `size // 2` responses, each turn from the one before."""
    client = target.client(timeout_s=300)
    if chain:
        previous = _chain(client, target, size // 2)
    else:
        (cid,) = new_conversations(target, 1, workers=1)
        seed_items(target, [cid], size)
    whole, model, share, first = [], [], [], {}
    failures = 0
    try:
        before = _seconds(client)
        for n in range(turns):
            request = _continued(target, previous) if chain else target.turn_body(cid)
            seconds, status, body = client.timed("POST", "/v1/responses", request)
            if chain and status == 200:
                previous = json.loads(body)["id"]
            after = _seconds(client)
            server_s, upstream_s = after[0] - before[0], after[1] - before[1]
            before = after
            found = ECHO_COUNT.search(body)
            if status != 200 or not found or int(found.group(1)) != size + 2 * n + 1:
                failures += 1
                continue
            if n == 0:
                first = {"turn_ms": round(seconds * 1000, 3),
                         "share_ms": round((server_s - upstream_s) * 1000, 3)}  # fmt: skip
                continue
            whole.append(seconds)
            model.append(upstream_s)
            share.append(server_s - upstream_s)
    finally:
        client.close()
    alone = _upstream_alone(upstream, target.upstream_route, size + 2 * turns - 1, 5)
    turn, own, model_call = stats_ms(whole), stats_ms(share), stats_ms(model)
    log(
        f"  {size} items{' (chain)' if chain else ''}: turn p50 {turn.get('median_ms')} ms, "
        "share p50 "
        f"{own.get('median_ms')} p99 {own.get('p99_ms')} ms, upstream p50 "
        f"{model_call.get('median_ms')} ms, first turn {first}"
    )
    return {"turn": turn, "upstream": model_call, "share": own, "first_turn": first,
            "upstream_alone_median_ms": alone, "failures": failures}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--storage", choices=tuple(OURS), default="sqlite")
    parser.add_argument(
        "--chains", default="", help="also chains of these many items (half as many responses)"
    )
    args = parser.parse_args(argv)
    bench.exit_on_sigterm()
    os.environ["BENCH_CONVOSTACK_METRICS"] = "true"  # the server's own timings
    sizes = tuple(int(s) for s in args.sizes.split(","))
    load_before = bench.load_average()
    rows: JSONDict = {}
    chains: JSONDict = {}
    with bench.scratch_dir("convostack-bench-") as work:
        port = bench.free_port()
        upstream_proc = bench.fake_upstream(port, work / "logs")
        upstream = Client(f"http://127.0.0.1:{port}")
        try:
            with running(OURS[args.storage][1], f"http://127.0.0.1:{port}/v1", work) as target:
                for size in sizes:
                    rows[str(size)] = by_length(target, upstream, size, args.turns)
                for size in (int(c) for c in args.chains.split(",") if c):
                    chains[str(size)] = by_length(target, upstream, size, args.turns, chain=True)
        finally:
            upstream.close()
            upstream_proc.stop()
    summary = {"benchmark": "turn_share", "storage": args.storage, "load_before": load_before,
               "by_items": rows, "chains_by_items": chains,
               "load_after": bench.load_average()}  # fmt: skip
    bench.emit(summary)


if __name__ == "__main__":
    main()
