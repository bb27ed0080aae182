"""Benchmark of the embedded model's turn latency against a conversation's history: a
turn (`responses.create` on a conversation, the stock openai client, a `convostack serve`
subprocess) on conversations of 0, 10, 30 and 100 messages, for one conversation and for
4 conversations taking turns, with the prompt cache off (every turn reads the whole
history) and on (the default: a returning conversation reads only what is new). Prints
one JSON summary on one line of stdout.

The figure that matters is a returning conversation's turn against a turn on an empty
conversation (target: within 2x). A conversation's first turn reads its whole history in
both modes; it is reported beside the returning turns. The server's RSS (the model runs
in it) is read after each mode, with its peak. Then the runtime alone, configured as
the provider does, with llama.cpp's own timings of a returning turn: what it reads anew,
and what each generated token costs over the whole context.

Bounded: every wait has a timeout, each history length takes a fixed number of turns, and
the 1-minute load average before and after is in the summary (the machine may be shared).

    python bench/embedded_history.py [--lengths 0,10,30,100] [--modes off,on]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
from common import emit, load_average

from convostack.providers.embedded import EmbeddedProvider
from convostack.providers.settings import EmbeddedSettings
from convostack.testing.stack import free_port, server_process

LENGTHS = (0, 10, 30, 100)
CONVERSATIONS = 4  # taking turns
RETURNING_TURNS = 2  # per conversation and history length (1 when the cache is off)
MAX_OUTPUT_TOKENS = 16
EMPTY_TURNS = 3
ITEMS_PER_CALL = 20  # the Conversations API's limit
REQUEST_TIMEOUT_SECONDS = 300.0
TOPICS = ("the sea", "a mountain", "the city", "a forest", "the sky", "a river")


@dataclass
class Turn:
    seconds: float
    input_tokens: int
    cached_tokens: int


def _history(length: int, tag: str) -> list[dict[str, str]]:
    """`length` messages, user and assistant in turn, about 35 tokens each."""
    messages = []
    for n in range(length):
        topic = TOPICS[n % len(TOPICS)]
        if n % 2 == 0:
            text = f"[{tag}] Question {n}: what can you tell me about {topic}, in a few words?"
        else:
            text = f"[{tag}] {topic.capitalize()} is worth a visit; answer {n} says it is calm."
        messages.append({"role": "user" if n % 2 == 0 else "assistant", "content": text})
    return messages


def _conversation(client: openai.OpenAI, length: int, tag: str) -> str:
    items: list[Any] = _history(length, tag)
    conversation = client.conversations.create(items=items[:ITEMS_PER_CALL]).id
    for start in range(ITEMS_PER_CALL, len(items), ITEMS_PER_CALL):
        client.conversations.items.create(conversation, items=items[start : start + ITEMS_PER_CALL])
    return conversation


def _turn(client: openai.OpenAI, model: str, conversation: str, n: int) -> Turn:
    started = time.perf_counter()
    response = client.responses.create(
        model=model, conversation=conversation, input=f"Turn {n}: and then?",
        temperature=0, max_output_tokens=MAX_OUTPUT_TOKENS,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if response.usage is None:
        raise RuntimeError(f"response {response.id} has no usage")
    usage = response.usage
    return Turn(seconds, usage.input_tokens, usage.input_tokens_details.cached_tokens)


def _figures(turns: list[Turn]) -> dict[str, Any]:
    return {
        "median_s": round(statistics.median(t.seconds for t in turns), 3),
        "max_s": round(max(t.seconds for t in turns), 3),
        "input_tokens": [t.input_tokens for t in turns],
        "cached_tokens": [t.cached_tokens for t in turns],
    }


def _length(client: openai.OpenAI, model: str, length: int, rounds: int) -> dict[str, Any]:
    """One conversation's first and returning turns, then `CONVERSATIONS` conversations'
    first turns and `rounds` rounds of returning turns, each in turn."""
    single = _conversation(client, length, f"s{length}")
    first = _turn(client, model, single, 0)
    returning = [_turn(client, model, single, n + 1) for n in range(rounds)]
    several = [_conversation(client, length, f"a{length}-{k}") for k in range(CONVERSATIONS)]
    firsts = [_turn(client, model, c, 0) for c in several]
    alternating = [_turn(client, model, c, n + 1) for n in range(rounds) for c in several]
    return {
        "messages": length,
        "one_conversation": {"first": _figures([first]), "returning": _figures(returning)},
        "alternating": {"first": _figures(firsts), "returning": _figures(alternating)},
    }


def _memory_mib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) // 1024
    return {"rss_mib": fields["VmRSS"], "peak_rss_mib": fields["VmHWM"]}


@contextlib.contextmanager
def serving(home: Path, cache_prompt: bool) -> Iterator[tuple[openai.OpenAI, int]]:
    """`convostack serve` with the embedded model alone, its prompt cache on or off."""
    config = home / "config.yaml"
    setting = "true" if cache_prompt else "false"
    config.write_text(
        f"providers:\n  - {{type: embedded, id: embedded, cache_prompt: {setting}}}\n"
    )
    env = {"CONVOSTACK_UPSTREAM": "", "CONVOSTACK_INFERENCE_MODE": "live"}
    port = free_port()
    with server_process(port, home, env={**env, "CONVOSTACK_CONFIG": str(config)}) as process:
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="bench", max_retries=0,
            timeout=REQUEST_TIMEOUT_SECONDS,
        )  # fmt: skip
        yield client, process.pid


def mode(cache_prompt: bool, lengths: list[int]) -> dict[str, Any]:
    model = EmbeddedSettings().model_id
    rounds = RETURNING_TURNS if cache_prompt else 1  # without the cache every turn is alike
    with (
        tempfile.TemporaryDirectory(prefix="convostack-bench-") as home,
        serving(Path(home), cache_prompt) as (client, pid),
    ):
        _turn(client, model, client.conversations.create().id, 0)  # loads the model
        empty = [
            _turn(client, model, client.conversations.create().id, 0) for _ in range(EMPTY_TURNS)
        ]
        by_length = [_length(client, model, length, rounds) for length in lengths]
        memory = _memory_mib(pid)
    empty_s = statistics.median(t.seconds for t in empty)
    for entry in by_length:
        for kind in ("one_conversation", "alternating"):
            returning = entry[kind]["returning"]
            returning["ratio_to_empty"] = round(returning["median_s"] / empty_s, 2)
    return {"empty_turn": _figures(empty), "by_length": by_length, **memory}


def _timed(server: Any, messages: list[dict[str, str]]) -> dict[str, Any]:
    """One answer of exactly MAX_OUTPUT_TOKENS tokens, with the runtime's own timings."""
    timings: list[dict[str, Any]] = []

    def on_chunk(chunk: dict[str, Any]) -> bool:
        if "error" in chunk:
            raise RuntimeError(chunk["error"])
        timings.extend([chunk["timings"]] if chunk.get("timings") else [])
        return False

    request = {
        "messages": messages, "max_tokens": MAX_OUTPUT_TOKENS, "temperature": 0,
        "ignore_eos": True, "stream": True,
    }  # fmt: skip
    server.handle_chat_completions(request, on_chunk)
    found = timings[-1]
    return {
        "prompt_tokens_read": found["prompt_n"],
        "prompt_ms": round(found["prompt_ms"]),
        "generated_tokens": found["predicted_n"],
        "ms_per_generated_token": round(found["predicted_ms"] / found["predicted_n"], 1),
    }


def bare(lengths: list[int]) -> dict[str, Any]:
    """The runtime as the provider configures it (cache on), called directly: where a
    returning turn's time goes, by llama.cpp's own timings of reading the new part of
    the prompt and of generating each token over the whole context."""
    provider = EmbeddedProvider(EmbeddedSettings())
    try:
        server = asyncio.run(provider._loaded())
        empty = _timed(server, [{"role": "user", "content": "Turn 0: and then?"}])
        by_length = []
        for length in lengths:
            history = [*_history(length, f"b{length}"), {"role": "user", "content": "Turn 0"}]
            _timed(server, history)  # its first turn: all read
            answered = {"role": "assistant", "content": "Fine."}
            again = [*history, answered, {"role": "user", "content": "Turn 1: and then?"}]
            by_length.append({"messages": length, "returning": _timed(server, again)})
    finally:
        asyncio.run(provider.close())
    return {"empty_turn": empty, "by_length": by_length}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)), help="messages")
    parser.add_argument(
        "--modes", default="off,on,bare", help="cache off, on, and/or the bare runtime's timings"
    )
    args = parser.parse_args()
    lengths = [max(0, min(int(n), 200)) for n in args.lengths.split(",")]
    chosen = args.modes.split(",")
    modes = [m for m in chosen if m in ("off", "on")]
    wall = time.perf_counter()
    load_before = load_average()
    results = {m: mode(m == "on", lengths) for m in modes}
    timings = bare(lengths) if "bare" in chosen else None
    target = {
        f"{m}/{entry['messages']}/{kind}": entry[kind]["returning"]["ratio_to_empty"] <= 2.0
        for m, result in results.items()
        for entry in result["by_length"]
        for kind in ("one_conversation", "alternating")
    }
    settings = EmbeddedSettings()
    summary = {
        "model": settings.model_id,
        "threads": settings.n_threads,
        "n_ctx": settings.n_ctx,
        "prompt_cache_mib": settings.prompt_cache_mib,
        "conversations_alternating": CONVERSATIONS,
        "max_output_tokens": MAX_OUTPUT_TOKENS,
        "cache": results,
        "returning_within_2x_of_empty": target,
        "bare_runtime_timings": timings,
        "loadavg_1m": {"before": load_before, "after": load_average()},
        "wall_s": round(time.perf_counter() - wall, 2),
    }
    emit(summary)


if __name__ == "__main__":
    main()
