"""Any OpenAI-style HTTP API (vLLM, SGLang, Ollama, llama.cpp server, OpenAI) as a provider.

Spoken over aiohttp with orjson, not through the official `openai` client: that client's
request transform walks every message and costs 4 to 230 ms per call (DESIGN.md), while a
plain POST of orjson bytes costs well under a millisecond. Streams are parsed
incrementally from the byte stream, so the first chunk goes out as soon as it arrives.

Failures are retried only while nothing has been produced yet (connection errors, 429,
5xx); every error message names the provider id and its base URL, so that whoever reads
it knows which upstream to look at. Credentials never show: userinfo in `base_url`
(`http://user:password@host/v1`) is taken out of it and sent as HTTP basic auth, and
what an upstream says in an error is cut to a few KiB and scrubbed of anything that
looks like a credential (redaction.py) before a tenant or a log sees it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import sys
from array import array
from collections.abc import AsyncGenerator

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from convostack.errors import APIError, RateLimitError
from convostack.providers.base import JSONDict, ModelInfo, ProviderError, ProviderTimeout
from convostack.providers.settings import OpenAICompatSettings
from convostack.redaction import Scrubber, basic_credentials, split_userinfo

log = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 0.25
BACKOFF_CAP_SECONDS = 8.0
# An upstream error's code and param are short names; anything longer is cut.
_SHORT_FIELD_CHARS = 64
# How much of a non-JSON upstream error body to quote back.
QUOTE_CHARS = 500
# How much of an upstream's error body is read at all: the rest is never relayed.
ERROR_BODY_BYTES = 64 * 1024


class SSEDecoder:
    """Incremental server-sent-events parser: feed it bytes as they arrive, in pieces cut
    anywhere, and get back the `data` of each complete event.

    Follows the SSE rules the `openai` client follows: `\\n`, `\\r\\n` and `\\r` end lines; a
    blank line ends an event; several `data:` lines are joined with `\\n`; lines starting
    with `:` are comments; `event:`, `id:` and `retry:` are ignored.
    """

    __slots__ = ("_cr", "_data", "_line")

    def __init__(self) -> None:
        self._line = b""  # an incomplete line carried over to the next feed
        self._cr = False  # the last byte fed was a `\r`, which a `\n` may complete
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        if self._cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the `\n` of a `\r\n` split across two feeds
        self._cr = chunk.endswith(b"\r")
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = (self._line + chunk).split(b"\n")
        self._line = lines.pop()
        events: list[bytes] = []
        for line in lines:
            self._take(line, events)
        return events

    def end(self) -> list[bytes]:
        """At end of input: the last event, even when the blank line after it is missing."""
        events: list[bytes] = []
        if self._line:
            self._take(self._line, events)
            self._line = b""
        self._take(b"", events)
        return events

    def _take(self, line: bytes, events: list[bytes]) -> None:
        if not line:
            if self._data:
                events.append(b"\n".join(self._data))
                self._data = []
            return
        name, _, value = line.partition(b":")
        if name == b"data":
            self._data.append(value[1:] if value.startswith(b" ") else value)


class OpenAICompatProvider:
    def __init__(self, settings: OpenAICompatSettings):
        self.id = settings.id
        self.settings = settings
        base_url, user, password = split_userinfo(settings.base_url)
        self.base_url = base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._cannot_tokenize = False
        self._headers = {"content-type": "application/json", "accept": "application/json"}
        basic = basic_credentials(user, password) if user is not None else None
        if settings.api_key:
            self._headers["authorization"] = f"Bearer {settings.api_key}"
            if basic is not None:
                log.warning(
                    "provider %r: base_url holds credentials and api_key is set; the "
                    "api_key is sent, the credentials in the URL are not",
                    self.id,
                )
        elif basic is not None:
            self._headers["authorization"] = f"Basic {basic}"
        secrets = (settings.api_key, password, basic, f"{user}:{password}" if password else None)
        self._scrub = Scrubber(secrets)
        self._timeout = aiohttp.ClientTimeout(
            total=settings.timeout, sock_connect=settings.connect_timeout
        )
        # A healthy stream may last longer than any total limit; what signals a stuck
        # upstream is silence, so streams are limited per read instead.
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=settings.connect_timeout, sock_read=settings.timeout
        )

    @property
    def _name(self) -> str:
        return f"Upstream '{self.id}' ({self.base_url})"

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.settings.max_connections)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers)

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def check_health(self) -> None:
        """Raises unless the upstream answers GET /models (even when `models` is
        configured and listing needs no call)."""
        await self._call("GET", "/models", None)

    async def list_models(self) -> list[ModelInfo]:
        if self.settings.models is not None:
            return [
                ModelInfo(model, owned_by=self.id, context_length=self.settings.context_length)
                for model in self.settings.models
            ]
        listed = await self._call("GET", "/models", None)
        data = listed.get("data")
        if not isinstance(data, list):
            raise ProviderError(
                f"{self._name} answered GET /models without a 'data' list; set 'models' "
                "in the provider's configuration to name the models it serves.",
                code="upstream_error",
            )
        return [
            ModelInfo(
                str(entry["id"]),
                owned_by=str(entry.get("owned_by") or self.id),
                created=int(entry.get("created") or 0),
                context_length=self.settings.context_length or _context_length(entry),
            )
            for entry in data
            if isinstance(entry, dict) and "id" in entry
        ]

    async def chat(self, request: JSONDict) -> JSONDict:
        result = await self._call("POST", "/chat/completions", request)
        # Some servers answer an error with status 200 and an OpenAI error body.
        if "choices" not in result and result.get("error"):
            raise self._error_in_body(result)
        return result

    async def chat_stream(self, request: JSONDict) -> AsyncGenerator[JSONDict, None]:
        body = orjson.dumps({**request, "stream": True})
        response = await self._send("POST", "/chat/completions", body, self._stream_timeout)
        done = False  # [DONE] seen, or the upstream ended after a finish_reason
        finished = False
        try:
            try:
                async for data in _sse_data(response):
                    if data == b"[DONE]":
                        done = True
                        return
                    chunk = self._chunk(data)
                    finished = finished or _has_finish_reason(chunk)
                    yield chunk
            except TimeoutError as exc:
                raise ProviderTimeout(
                    f"{self._name} sent nothing for {self.settings.timeout:g} seconds in the "
                    "middle of a stream.",
                    code="upstream_timeout",
                ) from exc
            except aiohttp.ClientError as exc:
                raise self._broken(f"{type(exc).__name__}: {exc}") from exc
            # Servers that omit [DONE] still end with a finish_reason; no finish_reason
            # and no [DONE] means the stream was cut off.
            if not finished:
                raise self._broken("the stream ended without a finish_reason or [DONE]")
            done = True
        finally:
            if done:
                response.release()
            else:
                # Early close (client gone), error or cut-off: drop the connection, so the
                # upstream sees the disconnect and stops generating.
                response.close()

    async def embeddings(self, request: JSONDict) -> JSONDict:
        # Always floats upstream: the route encodes base64 itself if its client asked.
        result = await self._call("POST", "/embeddings", {**request, "encoding_format": "float"})
        for entry in result.get("data") or ():
            if isinstance(entry, dict) and isinstance(entry.get("embedding"), str):
                entry["embedding"] = _decode_base64_floats(entry["embedding"])
        return result

    async def moderations(self, request: JSONDict) -> JSONDict:
        return await self._call("POST", "/moderations", request)

    async def count_tokens(self, request: JSONDict) -> int | None:
        """vLLM and SGLang count a chat request at `POST /tokenize` beside `/v1`; an
        engine without it is asked once, then no more."""
        if self._cannot_tokenize or not self.base_url.endswith("/v1"):
            return None
        body = {"model": request["model"], "messages": request["messages"]}
        if request.get("tools"):
            body["tools"] = request["tools"]
        url = self.base_url.removesuffix("/v1") + "/tokenize"
        try:
            assert self._session is not None
            async with self._session.post(url, data=orjson.dumps(body), timeout=self._timeout) as r:
                answer = orjson.loads(await r.read()) if r.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
            answer = None
        count = answer.get("count") if isinstance(answer, dict) else None
        if not isinstance(count, int):
            self._cannot_tokenize = True
            return None
        return count

    # --- HTTP -------------------------------------------------------------------------

    async def _call(self, method: str, path: str, request: JSONDict | None) -> JSONDict:
        body = orjson.dumps(request) if request is not None else None
        response = await self._send(method, path, body, self._timeout)
        try:
            payload = await response.read()
        except TimeoutError as exc:
            raise self._timed_out() from exc
        except aiohttp.ClientError as exc:
            raise ProviderError(
                f"{self._name} broke off its answer to {method} {path}: {self._scrub(str(exc))}",
                code="upstream_error",
            ) from exc
        finally:
            response.release()
        try:
            result = orjson.loads(payload)
        except orjson.JSONDecodeError:
            result = None
        if not isinstance(result, dict):
            raise ProviderError(
                f"{self._name} answered {method} {path} with something that is not a JSON "
                f"object: {self._scrub(_quote(payload))}",
                code="upstream_error",
            )
        return result

    async def _send(
        self, method: str, path: str, body: bytes | None, limits: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        """A response with a success status, whose body the caller reads and releases.

        Retries connection errors, 429 and 5xx: nothing has been produced yet, so a retry
        is invisible to the caller. Timeouts are not retried, since that would multiply
        the wait the caller configured.
        """
        if self._session is None:
            raise RuntimeError(f"provider {self.id!r} used before start()")
        url = self.base_url + path
        retries = self.settings.max_retries
        for attempt in range(retries + 1):
            try:
                response = await self._session.request(method, url, data=body, timeout=limits)
            except TimeoutError as exc:
                raise self._timed_out() from exc
            except aiohttp.ClientError as exc:
                if attempt == retries:
                    raise ProviderError(
                        f"{self._name} is unreachable ({self._scrub(str(exc))}). Check that "
                        "it is running and that base_url is right.",
                        code="upstream_unavailable",
                    ) from exc
                log.warning("%s: %s; retrying", self._name, self._scrub(str(exc)))
                await asyncio.sleep(_backoff(attempt, None))
                continue
            if response.status < 400:
                return response
            try:
                payload = await _read_at_most(response, ERROR_BODY_BYTES)
            except (TimeoutError, aiohttp.ClientError):
                payload = b""
            finally:
                response.release()
            status = response.status
            if (status == 429 or status >= 500) and attempt < retries:
                log.warning("%s: HTTP %d on %s %s; retrying", self._name, status, method, path)
                await asyncio.sleep(_backoff(attempt, _retry_after(response.headers)))
                continue
            raise self._status_error(status, payload, response.headers)
        raise AssertionError("unreachable: the last attempt returns or raises")

    # --- errors -----------------------------------------------------------------------

    def _status_error(
        self, status: int, payload: bytes, headers: CIMultiDictProxy[str]
    ) -> APIError:
        message, code, param = self._upstream_error(payload)
        if status >= 500:
            return ProviderError(
                f"{self._name} failed with HTTP {status}: {message}", code="upstream_error"
            )
        if status == 429:
            return RateLimitError(
                f"{self._name} is rate limiting requests: {message}",
                retry_after=_retry_after(headers) or 1.0,
                code="upstream_rate_limited",
            )
        if status in (401, 403):
            # Our credentials, not the caller's: a 401 would tell the caller their key is
            # wrong, so this is a gateway failure the operator must fix.
            return ProviderError(
                f"{self._name} refused our credentials (HTTP {status}): {message}. Check "
                "the provider's api_key.",
                code="upstream_auth_failed",
            )
        # 404/422 from an upstream still mean "this request is wrong"; we never send 422.
        return UpstreamRejected(
            f"{self._name} rejected the request: {message}",
            code=code,
            param=param,
            status=400 if status in (404, 422) else status,
        )

    def _error_in_body(self, body: JSONDict) -> ProviderError:
        message, code, _ = self._upstream_error(orjson.dumps(body))
        return ProviderError(
            f"{self._name} reported an error: {message}", code=code or "upstream_error"
        )

    def _chunk(self, data: bytes) -> JSONDict:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise self._broken(f"an event is not JSON: {_quote(data)}") from None
        if not isinstance(chunk, dict):
            raise self._broken(f"an event is not a JSON object: {_quote(data)}")
        if chunk.get("error"):
            raise self._error_in_body(chunk)
        return chunk

    def _upstream_error(self, payload: bytes) -> tuple[str, str | None, str | None]:
        """What the upstream said (see `_upstream_error`), cut and scrubbed."""
        message, code, param = _upstream_error(payload)
        return (
            self._scrub(message),
            None if code is None else self._scrub(code[:_SHORT_FIELD_CHARS]),
            None if param is None else self._scrub(param[:_SHORT_FIELD_CHARS]),
        )

    def _broken(self, why: str) -> ProviderError:
        return ProviderError(
            f"{self._name} broke off the stream before it finished: {self._scrub(why)}",
            code="upstream_stream_broken",
        )

    def _timed_out(self) -> ProviderTimeout:
        return ProviderTimeout(
            f"{self._name} did not answer within {self.settings.timeout:g} seconds.",
            code="upstream_timeout",
        )


class UpstreamRejected(ProviderError):
    """The upstream refused the request itself (4xx): the caller's request must change."""

    status = 400
    type = "invalid_request_error"


async def _sse_data(response: aiohttp.ClientResponse) -> AsyncGenerator[bytes, None]:
    decoder = SSEDecoder()
    async for piece in response.content.iter_any():
        for data in decoder.feed(piece):
            yield data
    for data in decoder.end():
        yield data


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The start of a body, `limit` bytes at most; the rest is left unread (releasing the
    response then drops the connection)."""
    data = bytearray()
    while len(data) < limit:
        piece = await response.content.read(limit - len(data))
        if not piece:
            break
        data += piece
    return bytes(data)


def _has_finish_reason(chunk: JSONDict) -> bool:
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        return False
    return any(isinstance(c, dict) and c.get("finish_reason") for c in choices)


def _upstream_error(payload: bytes) -> tuple[str, str | None, str | None]:
    """Message, code and param from an upstream error body: the OpenAI shape
    `{"error": {...}}`, the flat `{"message": ...}` some servers send, or raw text."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return _quote(payload) or "(empty body)", None, None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):
        return error, None, None
    if not isinstance(error, dict):
        error = body if isinstance(body, dict) else {}
    message = error.get("message")
    if not isinstance(message, str) or not message:
        return _quote(payload), None, None
    code = error.get("code")
    param = error.get("param")
    return (
        message,
        str(code) if code is not None and not isinstance(code, bool) else None,
        param if isinstance(param, str) else None,
    )


def _quote(payload: bytes) -> str:
    text = payload.decode("utf-8", "replace").strip()
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "..."


def _retry_after(headers: CIMultiDictProxy[str]) -> float | None:
    value = headers.get("retry-after-ms")
    scale = 0.001
    if value is None:
        value, scale = headers.get("retry-after"), 1.0
    try:
        return float(value) * scale if value is not None else None
    except ValueError:  # an HTTP date: rare from engines, fall back to our backoff
        return None


def _backoff(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None and 0 <= retry_after <= BACKOFF_CAP_SECONDS:
        return retry_after
    return min(BACKOFF_BASE_SECONDS * 2.0**attempt, BACKOFF_CAP_SECONDS)


def _decode_base64_floats(data: str) -> list[float]:
    values = array("f")
    values.frombytes(base64.b64decode(data))
    if sys.byteorder == "big":
        values.byteswap()  # the wire format is little-endian float32
    return values.tolist()


def _context_length(entry: JSONDict) -> int | None:
    """The context window an engine reports in its model listing, where it does: vLLM
    and SGLang say `max_model_len`, others `context_length` or `context_window`,
    llama.cpp's server `meta.n_ctx_train`."""
    found = entry.get("meta")
    meta: JSONDict = found if isinstance(found, dict) else {}
    for value in (
        entry.get("max_model_len"),
        entry.get("context_length"),
        entry.get("context_window"),
        meta.get("n_ctx_train"),
    ):
        if isinstance(value, int) and value > 0:
            return value
    return None
