"""Record/replay of model output, as a provider that wraps another one.

Sits at the provider boundary, so nothing is monkeypatched: in `record` mode every call
goes to the wrapped provider and its result (a completion, the whole list of stream
chunks, or the error it raised) is written to a JSON file; in `replay` mode the file is
read back and no model is touched; `record-if-missing` replays what exists and records
the rest; `live` just passes through.

A recording's key is a hash of the normalised request: keys sorted, floats rounded,
volatile ids (which differ on every run) replaced by a placeholder. Files live under
`<dir>/<test id>/<key>.json`, the test id coming from the `x-convostack-test-id` header
that the pytest plugin sends, so each test owns its recordings, in server mode too.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import orjson

from convostack.errors import APIError, InternalError
from convostack.providers.base import InferenceProvider, JSONDict, ProviderWrapper
from convostack.providers.recording_index import RecordingIndex
from convostack.providers.tokens import count_tokens

log = logging.getLogger(__name__)

Mode = Literal["live", "record", "replay", "record-if-missing"]
MODES: tuple[Mode, ...] = ("live", "record", "replay", "record-if-missing")
TEST_ID_HEADER = "x-convostack-test-id"

current_test_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "convostack_test_id", default=None
)

# Ids we or a model generate afresh on every run; they must not change a recording's key.
_VOLATILE_ID = re.compile(
    r"\b(?:conv|msg|resp|fc|fco|rs|call|chatcmpl|ctc|ctco|ws|mcp|mcpl)[_-][A-Za-z0-9]{6,}\b"
)


def _normalise(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, str):
        return _VOLATILE_ID.sub("<id>", value)
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def request_key(endpoint: str, request: JSONDict) -> tuple[str, JSONDict]:
    normalised: JSONDict = _normalise({"endpoint": endpoint, "request": request})
    digest = hashlib.sha256(orjson.dumps(normalised, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return digest[:24], normalised


def safe_test_id(test_id: str) -> str:
    """The folder name of a test's recordings."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", test_id).strip("_")[:180] or "unnamed"


class RecordingMissing(InternalError):
    pass


class _RecordedError(APIError):
    """An error replayed from a recording, with the status it had when recorded."""


class RecordingProvider(ProviderWrapper):
    def __init__(self, inner: InferenceProvider, mode: Mode, directory: Path):
        super().__init__(inner)
        self.mode = mode
        self.directory = directory
        self.index = RecordingIndex(directory)

    @property
    def counts_cheaply(self) -> bool:
        return bool(getattr(self.inner, "counts_cheaply", True))

    async def count_tokens(self, request: JSONDict) -> int | None:
        # Counting is not recorded: live it asks the provider, else the caller estimates.
        if self.mode == "live":
            return await count_tokens(self.inner, request)
        return None

    def _path(self, key: str) -> Path:
        test_id = current_test_id.get()
        folder = self.directory / safe_test_id(test_id) if test_id else self.directory
        return folder / f"{key}.json"

    def _load(self, endpoint: str, request: JSONDict) -> tuple[Path, JSONDict, JSONDict | None]:
        key, normalised = request_key(endpoint, request)
        path = self._path(key)
        if self.mode in ("replay", "record-if-missing") and path.exists():
            return path, normalised, orjson.loads(path.read_bytes())
        if self.mode == "replay":
            summary = orjson.dumps(normalised)[:600].decode(errors="replace")
            raise RecordingMissing(
                f"No recording of this {endpoint} request for test "
                f"'{current_test_id.get() or '(none)'}' (expected {path}). Record it by running "
                f"the test with --inference-mode=record-if-missing. Request: {summary}",
                code="recording_missing",
            )
        return path, normalised, None

    def _save(self, path: Path, normalised: JSONDict, result: JSONDict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"test_id": current_test_id.get(), **normalised, **result}
        path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n")
        self.index.add(path, record)

    @staticmethod
    def _error_record(exc: APIError) -> JSONDict:
        return {"error": {**exc.body()["error"], "status": exc.status}}

    @staticmethod
    def _raise_recorded(record: JSONDict) -> None:
        error = record.get("error")
        if error is not None:
            raise _RecordedError(
                error["message"], code=error.get("code"), param=error.get("param"),
                status=error.get("status", 500),
            )  # fmt: skip

    async def _unary(self, endpoint: str, request: JSONDict) -> JSONDict:
        if self.mode == "live":
            call = self.inner.chat if endpoint == "chat" else self.inner.embeddings
            return await call(request)
        path, normalised, record = self._load(endpoint, request)
        if record is not None:
            self._raise_recorded(record)
            response: JSONDict = record["response"]
            return response
        call = self.inner.chat if endpoint == "chat" else self.inner.embeddings
        try:
            response = await call(request)
        except APIError as exc:
            self._save(path, normalised, self._error_record(exc))
            raise
        self._save(path, normalised, {"response": response})
        return response

    async def chat(self, request: JSONDict) -> JSONDict:
        return await self._unary("chat", request)

    async def embeddings(self, request: JSONDict) -> JSONDict:
        return await self._unary("embeddings", request)

    async def chat_stream(self, request: JSONDict) -> AsyncIterator[JSONDict]:
        if self.mode == "live":
            async for chunk in self.inner.chat_stream(request):
                yield chunk
            return
        path, normalised, record = self._load("chat_stream", request)
        if record is not None:
            for chunk in record.get("chunks", []):
                yield chunk
            self._raise_recorded(record)
            return
        chunks: list[JSONDict] = []
        try:
            async for chunk in self.inner.chat_stream(request):
                # A copy: the consumer may edit the chunk it gets (drop usage, rename the model).
                chunks.append(orjson.loads(orjson.dumps(chunk)))
                yield chunk
        except APIError as exc:
            self._save(path, normalised, {"chunks": chunks, **self._error_record(exc)})
            raise
        self._save(path, normalised, {"chunks": chunks})
