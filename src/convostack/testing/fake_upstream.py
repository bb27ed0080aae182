"""A small, real OpenAI-compatible upstream, for tests and benchmarks: no model, no network.

Run it with `python -m convostack.testing.fake_upstream --port 8000`, or in-process with
`with fake_upstream_server() as base_url: ...` (a background uvicorn on a free port of
127.0.0.1; `base_url` ends in `/v1`).

Endpoints and behaviour, all deterministic from the request:

- `GET /v1/models`: the configured model ids (default: `fake-model`).
- `POST /v1/chat/completions`: the reply text is `echo: <text> [<n> messages]`, where
  <text> is the text of the last user message and <n> the number of messages received,
  so a test can see that the whole history arrived. Any model id is accepted and echoed.
  Streaming (`stream: true`) sends a chunk with `role: "assistant"`, the text in several
  deltas, a chunk with `finish_reason`, a usage chunk (`choices: []`) when
  `stream_options.include_usage` is true, then `data: [DONE]`.
  With `tools` in the request, and `tool_choice` naming a function (or `"required"`) or a
  last user message that starts with `call `, the answer is a call of that function (for
  `call <a> <b> ...`, one call of each named tool that exists, in parallel; else the first
  tool) with arguments `{"text": <text>}` and `finish_reason: "tool_calls"`. A JSON object
  in the message (`call add {"a": 1}`) is the arguments instead; `xN` asks for N rounds of
  calls (each after the previous round's tool results); `loop ...` calls for ever (a model
  that never stops), unless `tool_choice` is `"none"`; `... then <fault>` answers with that
  fault (below) once tool results are in; `?name` calls a tool no request offered. A
  last user message that starts with `think ` gets reasoning first, as vLLM's reasoning
  parsers give it (`reasoning_content`), then the answer. A
  `max_tokens` below the reply's word count cuts the reply there, with `finish_reason:
  "length"`; so do a call's arguments of more words than `max_tokens` (cut there, the
  call unfinished). After tool results (a last message with role `tool`), it answers in text.
  Usage counts words: prompt = words in all message texts, completion = words in the reply.
- `POST /v1/moderations`: flags every input that holds the word `forbidden` (`violence`).
- `POST /tokenize` (beside `/v1`, as vLLM has it): `{"count": <words>}` for a chat request's
  `messages`, the same count as `usage.prompt_tokens`.
- `POST /v1/embeddings`: one vector per input, `dimensions` long (default 8), from the
  SHA-256 of the input; values are multiples of 1/128 so float32 keeps them exact.
  `encoding_format: "base64"` gives little-endian float32 in base64.
- `GET /health`: 200 `{"status": "ok"}` (what some gateways probe before they serve).
- `POST /v1/responses`: for benchmarks of peers that forward turns to their upstream's
  Responses API (see `fake_responses`): the reply is `echo: <text> [<n> items]`, with
  the full event sequence when `stream` is true. Recorded like chat; no faults, no tools.
- `GET /fake/requests`: the requests received, oldest first (`{"data": [{"method", "path",
  "authorization", "fault", "body", "outcome"}]}`), the last RECORD_LIMIT of them;
  `outcome` is `completed`, or for streams `aborted` when the client went away early.
  `POST /fake/reset` forgets them.

Faults, chosen by the header `x-fake-fault` or else by the whole text of the last user
message: `fail500` (HTTP 500 with an OpenAI error body), `fail400` (HTTP 400, ditto),
`slow:<seconds>` (sleep before answering), `flood:<KiB>` (an answer that long, in 1 KiB
deltas), `drip:<seconds>` (sleep between stream
chunks), `break` (a stream sends its role chunk and two deltas, then drops the connection
without `[DONE]`; a non-stream answer is cut off mid-body), `error-chunk` (a stream sends
its role chunk, then a chunk with a top-level `error`), `echo-headers` (HTTP 400 whose
message quotes every request header, `authorization` included, as careless proxies do),
`huge-error:<characters>` (HTTP 400 with a message that long).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import sys
from array import array
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from convostack.testing import fake_responses
from convostack.testing.background import serving

JSONDict = dict[str, Any]

DEFAULT_MODELS = ("fake-model",)
CREATED = 1_700_000_000  # a fixed timestamp keeps every answer byte-for-byte repeatable
RECORD_LIMIT = 200
STREAM_PIECES = 4
EMBEDDING_DIMENSIONS = 8


class _DropConnection(Exception):
    """Raised after a response has started, to cut the connection (see `_drops`)."""


def _drops(app: ASGIApp) -> ASGIApp:
    """Ends the ASGI call quietly on _DropConnection: uvicorn then closes the connection of
    an unfinished response, logging one line rather than a traceback."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        with contextlib.suppress(_DropConnection):
            await app(scope, receive, send)

    return wrapped


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


def _error(status: int, message: str, kind: str, code: str) -> Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return _json(body, status)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        ).strip()
    return ""


def _last_user_text(messages: Sequence[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def _thinks(reply: str) -> bool:
    return reply.startswith("echo: think ")


def _thought(reply: str) -> str:
    return "first I consider: " + reply.removeprefix("echo: think ").split(" [", 1)[0]


def _prompt_words(messages: Sequence[Any]) -> int:
    return sum(len(_text(m.get("content")).split()) for m in messages if isinstance(m, dict))


def _pieces(text: str, count: int) -> list[str]:
    """`text` cut into `count` (or fewer) pieces that join back to it exactly."""
    size = max(1, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _rounds_done(messages: Sequence[Any]) -> int:
    """Tool-result rounds since the last user message: assistant messages with calls."""
    done = 0
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") == "user":
            break
        done += message.get("role") == "assistant" and bool(message.get("tool_calls"))
    return done


def _script(text: str, names: list[str]) -> tuple[list[str], str | None, int | None]:
    """What `call <tools> [{...}] [xN]` or `loop <tools> [{...}]` asks for: the tools to
    call, their arguments (the text in braces, re-encoded if it is JSON, else as it is)
    and how many rounds (None: forever)."""
    head, brace, tail = text.partition("{")
    words = head.split()
    rounds: int | None = 1 if words[0] == "call" else None
    arguments: str | None = None
    if brace:
        body, _, after = ("{" + tail).rpartition("}")
        arguments = body + "}"
        with contextlib.suppress(orjson.JSONDecodeError):
            arguments = orjson.dumps(orjson.loads(arguments)).decode()
        words += after.split()
    for word in words:
        if rounds is not None and word[:1] == "x" and word[1:].isdigit():
            rounds = int(word[1:])
    # "?name" calls `name` even when no tool has that name (a model that makes one up).
    chosen = [w.lstrip("?") for w in words[1:] if w in names or w.startswith("?")]
    return chosen or names[:1], arguments, rounds


def _fault_after_tools(text: str, messages: Sequence[Any]) -> str | None:
    """`call ... then <fault>`: the fault, once a round of tool results is in."""
    _, then, fault = text.rpartition(" then ")
    if then and fault and _rounds_done(messages) >= 1:
        return fault.strip()
    return None


def _tool_calls(body: JSONDict, text: str) -> list[JSONDict]:
    tools = [t for t in body.get("tools") or () if isinstance(t, dict) and t.get("function")]
    if not tools:
        return []
    messages = body.get("messages") or [{}]
    names = [str(t["function"].get("name")) for t in tools]
    choice = body.get("tool_choice")
    arguments: str | None = None
    scripted = text.split(maxsplit=1)[0] in ("call", "loop") if text.strip() else False
    if scripted:
        # "call a b {json} x3": one call of each named tool (or the first tool), in
        # parallel, with those arguments, for three rounds; "loop ...": for ever.
        chosen, arguments, rounds = _script(text, names)
        if choice == "none" or (rounds is not None and _rounds_done(messages) >= rounds):
            return []
    elif isinstance(messages[-1], dict) and messages[-1].get("role") == "tool":
        return []  # tool results are in: the model answers in text
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        chosen = [str(choice["function"].get("name"))]
    elif choice == "required":
        chosen = names[:1]
    else:
        return []
    encoded = orjson.dumps({"text": text}).decode() if arguments is None else arguments
    tag = hashlib.sha256(f"{text}{len(messages)}".encode()).hexdigest()[:8]
    return [
        {"id": f"call_{tag}{n}", "type": "function",
         "function": {"name": name, "arguments": encoded}}
        for n, name in enumerate(chosen)
    ]  # fmt: skip


def _cut_calls(calls: list[JSONDict], limit: int) -> tuple[list[JSONDict], str]:
    """Calls whose arguments have more words than `limit` cut there, as a model stopped
    by `max_tokens` leaves them: with finish_reason `length`."""
    finish = "stop"
    for call in calls:
        words = call["function"]["arguments"].split(" ")
        if len(words) > limit:
            call["function"]["arguments"] = " ".join(words[:limit])
            finish = "length"
    return calls, finish


class FakeUpstream:
    def __init__(self, models: Sequence[str] = DEFAULT_MODELS):
        self.models = list(models)
        self.requests: list[JSONDict] = []
        self.starlette = Starlette(
            routes=[
                Route("/v1/models", self.list_models, methods=["GET"]),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/embeddings", self.embeddings, methods=["POST"]),
                Route("/tokenize", self.tokenize, methods=["POST"]),
                Route("/v1/moderations", self.moderations, methods=["POST"]),
                Route("/fake/requests", self.recorded, methods=["GET"]),
                # For bench/ peers only (agentic-api, smg): see the block at `responses`.
                Route("/health", self.health, methods=["GET"]),
                Route("/v1/responses", self.responses, methods=["POST"]),
                Route("/fake/reset", self.reset, methods=["POST"]),
            ]
        )
        self.app = _drops(self.starlette)

    async def list_models(self, request: Request) -> Response:
        data = [
            {"id": m, "object": "model", "created": CREATED, "owned_by": "fake"}
            for m in self.models
        ]
        return _json({"object": "list", "data": data})

    async def recorded(self, request: Request) -> Response:
        return _json({"object": "list", "data": self.requests})

    async def reset(self, request: Request) -> Response:
        self.requests.clear()
        return _json({"reset": True})

    def _record(self, request: Request, body: JSONDict, fault: str) -> JSONDict:
        record = {
            "method": request.method,
            "path": request.url.path,
            "authorization": request.headers.get("authorization"),
            "fault": fault,
            "body": body,
            "outcome": "completed",
        }
        self.requests.append(record)
        del self.requests[:-RECORD_LIMIT]
        return record

    async def chat(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        messages = body.get("messages") or []
        text = _last_user_text(messages)
        fault = request.headers.get("x-fake-fault") or _fault_after_tools(text, messages) or text
        record = self._record(request, body, fault)
        failed = await _apply_fault(fault, request)
        if failed is not None:
            return failed
        reply = f"echo: {text} [{len(messages)} messages]"
        pieces = STREAM_PIECES
        if fault.startswith("flood:"):  # a long answer, as fast as it can go
            pieces = int(fault.removeprefix("flood:"))
            reply = "x" * (1024 * pieces)
        finish = "stop"
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if isinstance(limit, int) and len(reply.split()) > limit:
            reply, finish = " ".join(reply.split()[:limit]), "length"
        prompt_words = _prompt_words(messages)
        usage = {
            "prompt_tokens": prompt_words,
            "completion_tokens": len(reply.split()),
            "total_tokens": prompt_words + len(reply.split()),
        }
        calls = _tool_calls(body, text)
        if calls and isinstance(limit, int):
            calls, finish = _cut_calls(calls, limit)
        ident = "chatcmpl-fake" + hashlib.sha256(orjson.dumps(body)).hexdigest()[:16]
        model = body.get("model", "")
        if body.get("stream"):
            options = body.get("stream_options") or {}
            chunks = _chunks(
                ident, model, reply, finish, calls, usage, bool(options.get("include_usage")),
                pieces,
            )  # fmt: skip
            return StreamingResponse(_sse(chunks, fault, record), media_type="text/event-stream")
        message: JSONDict = {"role": "assistant", "content": None if calls else reply}
        if _thinks(reply):
            message["reasoning_content"] = _thought(reply)
        if calls:
            message["tool_calls"] = calls
        completion = {
            "id": ident,
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if calls and finish == "stop" else finish,
                    "logprobs": None,
                }
            ],
            "usage": usage,
        }
        if fault == "break":
            return _CutOff(orjson.dumps(completion))
        return _json(completion)

    # --- For bench/ peers only ---------------------------------------------------------
    # vLLM agentic-api and SGLang smg forward a turn to the upstream's /v1/responses (and
    # probe /health) instead of calling chat completions; convostack never calls these.

    async def health(self, request: Request) -> Response:
        return _json({"status": "ok"})

    async def responses(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        self._record(request, body, "")
        response = fake_responses.response_for(body)
        if body.get("stream"):
            return StreamingResponse(_responses_sse(response), media_type="text/event-stream")
        return _json(response)

    # --- end of the block for bench/ peers -----------------------------------------------

    async def moderations(self, request: Request) -> Response:
        """Flags any text holding the word `forbidden` (category `violence`)."""
        body = orjson.loads(await request.body())
        texts = body.get("input")
        texts = texts if isinstance(texts, list) else [texts]
        results = []
        for text in texts:
            flagged = "forbidden" in str(text)
            results.append({"flagged": flagged, "categories": {"violence": flagged},
                            "category_scores": {"violence": 0.99 if flagged else 0.01},
                            "category_applied_input_types": {"violence": ["text"]}})  # fmt: skip
        answer = {"id": "modr-fake", "model": body.get("model", ""), "results": results}
        return Response(orjson.dumps(answer), media_type="application/json")

    async def tokenize(self, request: Request) -> Response:
        """vLLM's count of a chat request: here, as in `usage`, its words."""
        body = orjson.loads(await request.body())
        count = _prompt_words(body.get("messages") or [])
        return Response(orjson.dumps({"count": count, "max_model_len": 32768}),
                        media_type="application/json")  # fmt: skip

    async def embeddings(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        fault = request.headers.get("x-fake-fault") or ""
        self._record(request, body, fault)
        failed = await _apply_fault(fault, request)
        if failed is not None:
            return failed
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) or _is_tokens(raw) else list(raw or [])
        size = int(body.get("dimensions") or EMBEDDING_DIMENSIONS)
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, item in enumerate(inputs):
            vector = fake_embedding(item if isinstance(item, str) else str(item), size)
            data.append(
                {
                    "object": "embedding",
                    "index": index,
                    "embedding": _base64_floats(vector) if as_base64 else vector,
                }
            )
        words = sum(len(str(item).split()) for item in inputs)
        return _json(
            {
                "object": "list",
                "data": data,
                "model": body.get("model", ""),
                "usage": {"prompt_tokens": words, "total_tokens": words},
            }
        )


def fake_embedding(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """The vector the fake answers for `text`: what a test compares against."""
    digest = b""
    counter = 0
    while len(digest) < dimensions:
        digest += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    return [(byte - 128) / 128 for byte in digest[:dimensions]]


def _is_tokens(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, int) for v in value)


def _base64_floats(vector: list[float]) -> str:
    values = array("f", vector)
    if sys.byteorder == "big":
        values.byteswap()
    return base64.b64encode(values.tobytes()).decode()


async def _apply_fault(fault: str, request: Request) -> Response | None:
    """The error response a fault asks for; sleeps first for `slow:<seconds>`."""
    if fault == "echo-headers":
        quoted = "\n".join(f"{name}: {value}" for name, value in request.headers.items())
        message = f"Fake upstream rejected the request (echo-headers). It had:\n{quoted}"
        return _error(400, message, "invalid_request_error", "invalid_value")
    if fault.startswith("huge-error:"):
        message = "x" * int(fault.removeprefix("huge-error:"))
        return _error(400, message, "invalid_request_error", "invalid_value")
    if fault == "fail500":
        return _error(500, "Fake upstream failure (fail500).", "server_error", "fake_failure")
    if fault == "fail400":
        message = "Fake upstream rejected the request (fail400)."
        return _error(400, message, "invalid_request_error", "invalid_value")
    if fault.startswith("slow:"):
        await asyncio.sleep(float(fault.removeprefix("slow:")))
    return None


def _chunks(
    ident: str,
    model: str,
    reply: str,
    finish: str,
    calls: list[JSONDict],
    usage: JSONDict,
    with_usage: bool,
    pieces: int = STREAM_PIECES,
) -> list[JSONDict]:
    def chunk(delta: JSONDict, finish: str | None = None) -> JSONDict:
        out: JSONDict = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        if with_usage:
            out["usage"] = None
        return out

    chunks = [chunk({"role": "assistant", "content": None if calls else ""})]
    if _thinks(reply):  # a reasoning engine (vLLM's parsers): its thoughts come first
        chunks += [chunk({"reasoning_content": p}) for p in _pieces(_thought(reply), 2)]
    if not calls:
        chunks += [chunk({"content": piece}) for piece in _pieces(reply, pieces)]
        chunks.append(chunk({}, finish))
    for index, call in enumerate(calls):
        function = call["function"]
        head = {"index": index, "id": call["id"], "type": "function"}
        chunks.append(
            chunk(
                {"tool_calls": [{**head, "function": {"name": function["name"], "arguments": ""}}]}
            )
        )
        chunks += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            for piece in _pieces(function["arguments"], 2)
        ]
    if calls:
        chunks.append(chunk({}, "tool_calls" if finish == "stop" else finish))
    if with_usage:
        final = chunk({})
        final["choices"] = []
        final["usage"] = usage
        chunks.append(final)
    return chunks


async def _sse(chunks: list[JSONDict], fault: str, record: JSONDict) -> AsyncIterator[bytes]:
    drip = float(fault.removeprefix("drip:")) if fault.startswith("drip:") else 0.0
    try:
        for n, chunk in enumerate(chunks):
            if fault == "error-chunk" and n == 1:
                error = {
                    "message": "Fake upstream error in the stream (error-chunk).",
                    "type": "server_error",
                    "param": None,
                    "code": "fake_failure",
                }
                yield b"data: " + orjson.dumps({"error": error}) + b"\n\n"
                return
            if fault == "break" and n == 3:
                record["outcome"] = "broken"
                raise _DropConnection("fault 'break': dropping the connection mid-stream")
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
            if drip:
                await asyncio.sleep(drip)
        yield b"data: [DONE]\n\n"
    except (asyncio.CancelledError, GeneratorExit):
        record["outcome"] = "aborted"
        raise


async def _responses_sse(response: JSONDict) -> AsyncIterator[bytes]:
    for frame in fake_responses.stream_events(response):
        yield frame
    yield b"data: [DONE]\n\n"


class _CutOff(Response):
    """A JSON answer that announces its full length, sends half, and drops the connection."""

    def __init__(self, content: bytes):
        super().__init__(content, media_type="application/json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        half = self.body[: len(self.body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})
        raise _DropConnection("fault 'break': dropping the connection mid-body")


def run_fake_upstream(
    port: int, host: str = "127.0.0.1", models: Sequence[str] = DEFAULT_MODELS
) -> None:
    """Serve the fake in the foreground until interrupted."""
    uvicorn.run(FakeUpstream(models).app, host=host, port=port, log_level="warning")


@contextlib.contextmanager
def fake_upstream_server(models: Sequence[str] = DEFAULT_MODELS) -> Iterator[str]:
    """The fake in a background thread on a free port of 127.0.0.1; yields its base URL."""
    with serving(FakeUpstream(models).app) as port:
        yield f"http://127.0.0.1:{port}/v1"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--model", action="append", help="A model id to list (repeatable; default fake-model)."
    )
    args = parser.parse_args(argv)
    run_fake_upstream(args.port, args.host, args.model or DEFAULT_MODELS)


if __name__ == "__main__":
    main()
