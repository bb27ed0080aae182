"""Benchmark of the embedded model: load time, first-token latency and tokens per second,
measured through convostack (a `convostack serve` subprocess on 127.0.0.1, the stock
openai client streaming chat.completions over HTTP) and on the bare xllamacpp runtime
(the same model, threads, context and request, called in-process with no convostack),
so that convostack's overhead is a ratio. Prints one JSON summary on stdout.

Bounded: at most MAX_RUNS streamed answers of at most MAX_TOKENS_LIMIT tokens on each
side, every wait has a timeout. The two sides' runs alternate, and the 1-minute load
average before and after is in the summary, since the machine may be shared.

    python bench/embedded.py [--runs N] [--max-tokens N]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
from openai.types.chat import ChatCompletionMessageParam

from convostack.providers.embedded import packaged_model_path
from convostack.providers.settings import EmbeddedSettings
from convostack.testing.stack import free_port, server_process

MAX_RUNS = 10
MAX_TOKENS_LIMIT = 512
REQUEST_TIMEOUT_SECONDS = 120.0
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Write three sentences about the sea."},
]
LOADED_LINE = re.compile(r"embedded model \S+ loaded in ([0-9.]+) s")


@dataclass
class Run:
    ttft_s: float  # request sent -> first generated text
    total_s: float
    completion_tokens: int
    decode_tokens_per_s: float  # tokens after the first / time after the first
    text: str


def _run(started: float, first: float | None, ended: float, tokens: int, text: str) -> Run:
    if first is None or tokens < 2:
        raise RuntimeError(f"the model produced too little to measure ({tokens} tokens)")
    return Run(
        ttft_s=first - started,
        total_s=ended - started,
        completion_tokens=tokens,
        decode_tokens_per_s=(tokens - 1) / (ended - first),
        text=text,
    )


def _summary(load_s: float, runs: list[Run]) -> dict[str, Any]:
    texts = {run.text for run in runs}
    return {
        "load_s": round(load_s, 3),
        "ttft_s": round(statistics.median(r.ttft_s for r in runs), 4),
        "tokens_per_s": round(statistics.median(r.decode_tokens_per_s for r in runs), 2),
        "total_s": round(statistics.median(r.total_s for r in runs), 4),
        "completion_tokens": [r.completion_tokens for r in runs],
        "identical_texts": len(texts) == 1,
        "text_sha256": hashlib.sha256(runs[0].text.encode()).hexdigest()[:16],
    }


# --- the bare runtime -------------------------------------------------------------------


def bare_runtime(settings: EmbeddedSettings) -> tuple[Any, float]:
    """The runtime's server with the model loaded, as convostack configures it, and the
    seconds that took."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(packaged_model_path())
    params.n_ctx = settings.n_ctx
    params.n_parallel = 1
    params.cpuparams.n_threads = settings.n_threads
    params.cpuparams_batch.n_threads = settings.n_threads
    params.verbosity = -1
    started = time.perf_counter()
    server = xllamacpp.Server(params)
    return server, time.perf_counter() - started


def bare_request(max_tokens: int) -> dict[str, Any]:
    return {
        "messages": MESSAGES,
        "max_tokens": max_tokens,
        "temperature": 0,
        "cache_prompt": False,  # as convostack asks, for byte-deterministic output
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def _bare_once(server: Any, request: dict[str, Any]) -> Run:
    pieces: list[str] = []
    first: list[float] = []
    tokens: list[int] = []

    def on_chunk(chunk: dict[str, Any]) -> bool:
        if "error" in chunk:
            raise RuntimeError(chunk["error"])
        for choice in chunk.get("choices") or ():
            text = (choice.get("delta") or {}).get("content")
            if text:
                first.append(time.perf_counter())
                pieces.append(text)
        if chunk.get("usage"):
            tokens.append(chunk["usage"]["completion_tokens"])
        return False  # True would stop the generation

    started = time.perf_counter()
    server.handle_chat_completions(request, on_chunk)
    ended = time.perf_counter()
    return _run(
        started, first[0] if first else None, ended, tokens[-1] if tokens else 0, "".join(pieces)
    )


# --- through convostack -----------------------------------------------------------------


@contextlib.contextmanager
def convostack_server(home: Path, threads: int | None) -> Iterator[tuple[str, Path]]:
    """`convostack serve` as a user starts it, on a free loopback port: with no flags, or
    with a config file that gives the embedded model `threads` threads."""
    port = free_port()
    # Pin what a developer may have exported: no upstream, live inference, our home.
    env = {"CONVOSTACK_UPSTREAM": "", "CONVOSTACK_INFERENCE_MODE": "live", "CONVOSTACK_CONFIG": ""}
    if threads is not None:
        config = home / "config.yaml"
        config.write_text(
            f"providers:\n  - {{type: embedded, id: embedded, n_threads: {threads}}}\n"
        )
        env["CONVOSTACK_CONFIG"] = str(config)
    with server_process(port, home, env=env):
        yield f"http://127.0.0.1:{port}/v1", home / f"server-{port}.log"


def _stream(client: openai.OpenAI, model: str, max_tokens: int) -> Run:
    pieces: list[str] = []
    first: float | None = None
    tokens = 0
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model=model,
        messages=MESSAGES,
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                first = first or time.perf_counter()
                pieces.append(choice.delta.content)
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return _run(started, first, time.perf_counter(), tokens, "".join(pieces))


def measure(
    settings: EmbeddedSettings, threads: int | None, runs: int, max_tokens: int
) -> dict[str, Any]:
    """Both sides loaded, then their runs interleaved (bare, convostack, bare, ...), so
    that a machine getting busier or quieter meanwhile weighs on both alike."""
    server, bare_load_s = bare_runtime(settings)
    request = bare_request(max_tokens)
    with (
        tempfile.TemporaryDirectory(prefix="convostack-bench-") as home,
        convostack_server(Path(home), threads) as (base_url, log_file),
    ):
        client = openai.OpenAI(
            base_url=base_url, api_key="bench", max_retries=0, timeout=REQUEST_TIMEOUT_SECONDS
        )
        listed = [m.id for m in client.models.list()]
        if settings.model_id not in listed:
            raise RuntimeError(f"convostack serve does not list {settings.model_id}: {listed}")
        cold = _stream(client, settings.model_id, max_tokens)  # loads the model
        found = LOADED_LINE.search(log_file.read_text())
        if found is None:
            raise RuntimeError(f"no 'loaded in' line in the server's log {log_file}")
        bare: list[Run] = []
        served: list[Run] = []
        for _ in range(runs):
            bare.append(_bare_once(server, request))
            served.append(_stream(client, settings.model_id, max_tokens))
    del server
    through = _summary(float(found.group(1)), served)
    through["first_request_ttft_s"] = round(cold.ttft_s, 4)  # includes the load
    through["identical_texts"] = through["identical_texts"] and cold.text == served[0].text
    return {"bare_runtime": _summary(bare_load_s, bare), "convostack": through}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help=f"answers per side, 1..{MAX_RUNS}")
    parser.add_argument("--max-tokens", type=int, default=128, help="tokens per answer")
    parser.add_argument(
        "--threads", type=int, help="CPU threads for the model [default: the provider's default]"
    )
    args = parser.parse_args()
    runs = max(1, min(args.runs, MAX_RUNS))
    max_tokens = max(8, min(args.max_tokens, MAX_TOKENS_LIMIT))
    settings = EmbeddedSettings()
    if args.threads is not None:
        settings = EmbeddedSettings(n_threads=max(1, args.threads))
    path = packaged_model_path()
    path.read_bytes()  # into the page cache, so neither side pays the first disk read
    wall = time.perf_counter()
    load_before = os.getloadavg()[0]
    threads = settings.n_threads if args.threads is not None else None
    measured = measure(settings, threads, runs, max_tokens)
    bare, served = measured["bare_runtime"], measured["convostack"]
    import xllamacpp

    summary = {
        "model": settings.model_id,
        "model_file": path.name,
        "runtime": f"xllamacpp {xllamacpp.__version__}",
        "threads": settings.n_threads,
        "n_ctx": settings.n_ctx,
        "runs": runs,
        "max_tokens": max_tokens,
        "bare_runtime": bare,
        "convostack": served,
        "overhead": {
            "ttft_ratio": round(served["ttft_s"] / bare["ttft_s"], 3),
            "tokens_per_s_ratio": round(served["tokens_per_s"] / bare["tokens_per_s"], 3),
            "load_ratio": round(served["load_s"] / bare["load_s"], 3),
        },
        "same_text_both_ways": bare["text_sha256"] == served["text_sha256"],
        "loadavg_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "wall_s": round(time.perf_counter() - wall, 2),
    }
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
