"""Chat Completions and Embeddings: route the model, call its provider, and hand back the
provider's answer under the public model id.

A stream's first chunk is fetched before the HTTP response starts, so a failure before
any output (unknown model, upstream down, upstream 4xx) is a real HTTP error in the
OpenAI error body. A failure after that can only be the stream's last event.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import sys
from array import array
from collections.abc import AsyncGenerator, AsyncIterator

import orjson

from convostack.chat.models import ChatCompletionCreate, EmbeddingCreate
from convostack.errors import APIError, InternalError
from convostack.providers.base import JSONDict
from convostack.providers.router import ModelRouter

log = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"


async def complete(router: ModelRouter, request: ChatCompletionCreate) -> JSONDict:
    route = await router.resolve(request.model)
    result = await route.provider.chat(request.upstream_body(route.model.id))
    result["model"] = route.public_id
    for choice in result.get("choices") or ():
        message = choice.get("message")
        if isinstance(message, dict):
            message.setdefault("refusal", None)  # required by the schema; engines omit it
    return result


async def stream(router: ModelRouter, request: ChatCompletionCreate) -> AsyncIterator[bytes]:
    """The SSE body of a streaming completion, its first chunk already received."""
    route = await router.resolve(request.model)
    chunks = route.provider.chat_stream(request.upstream_body(route.model.id))
    try:
        first = await anext(chunks, None)
    except BaseException:
        await _close(chunks)
        raise
    return _events(first, chunks, route.public_id, request.wants_usage)


async def _events(
    first: JSONDict | None, chunks: AsyncIterator[JSONDict], public_id: str, with_usage: bool
) -> AsyncIterator[bytes]:
    try:
        if first is not None:
            event = _event(first, public_id, with_usage)
            if event is not None:
                yield event
            async for chunk in chunks:
                event = _event(chunk, public_id, with_usage)
                if event is not None:
                    yield event
        yield DONE
    except (GeneratorExit, asyncio.CancelledError):
        # The client disconnected: expected, so one line at INFO, never a traceback.
        log.info("chat stream for model %s: the client left before its end", public_id)
        raise
    except APIError as exc:
        log.warning("chat stream for model %s failed: %s", public_id, exc.message)
        yield b"data: " + exc.body_bytes() + b"\n\n"
    except Exception:
        # The response has started, so the app's error mapping can no longer answer; end
        # the stream with an error event the client raises, revealing nothing internal.
        log.exception("chat stream for model %s failed", public_id)
        error = InternalError("The server had an error while processing your request.")
        yield b"data: " + error.body_bytes() + b"\n\n"
    finally:
        # Also runs when the client disconnects (the task is cancelled): closing the
        # provider's stream cancels the generation upstream.
        await _close(chunks)


def _event(chunk: JSONDict, public_id: str, with_usage: bool) -> bytes | None:
    if not with_usage:
        usage = chunk.pop("usage", None)
        if usage is not None and not chunk.get("choices"):
            return None  # the usage chunk we asked for on our own account
    chunk["model"] = public_id
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


async def _close(chunks: AsyncIterator[JSONDict]) -> None:
    if isinstance(chunks, AsyncGenerator):
        await chunks.aclose()


async def embed(router: ModelRouter, request: EmbeddingCreate) -> JSONDict:
    route = await router.resolve(request.model)
    result = await route.provider.embeddings(request.upstream_body(route.model.id))
    result["model"] = route.public_id
    if request.encoding_format == "base64":
        # What the `openai` client asks for by default; providers always return floats.
        for entry in result.get("data") or ():
            if isinstance(entry, dict) and isinstance(entry.get("embedding"), list):
                entry["embedding"] = base64_floats(entry["embedding"])
    return result


def base64_floats(values: list[float]) -> str:
    """Base64 of little-endian float32: the `encoding_format: "base64"` wire form."""
    packed = array("f", values)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")
