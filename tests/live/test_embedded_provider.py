"""The embedded provider on its own, with the real model: what only a live model shows
(cancellation that stops the runtime, the runtime's side listener locked down).

Stopping is observed at the runtime itself (a wrapper counts the chunks it hands out and
knows when its call returns), not by timing, so a busy machine does not fail these.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import socket
import stat
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from convostack.providers.base import ProviderError
from convostack.providers.embedded import EmbeddedProvider
from convostack.providers.settings import EmbeddedSettings

REQUEST = {
    "model": "smollm2-135m-instruct",
    "messages": [{"role": "user", "content": "Tell me a very long story about a dragon."}],
    "temperature": 0,
}
LONG = 1500  # tokens asked for; a stopped generation ends far below
STOPPED_WITHIN = 100  # chunks a stop may take to land on a very busy machine


class CountingRuntime:
    """Stands between the provider and the runtime's server, counting what it streams."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.chunks = 0
        self.running = False
        self.third_chunk = threading.Event()
        self.returned = threading.Event()

    @property
    def listening_address(self) -> str:
        address: str = self.inner.listening_address
        return address

    def handle_chat_completions(self, request: Any, callback: Callable[[Any], bool]) -> Any:
        self.running = True
        self.returned.clear()

        def counted(chunk: Any) -> bool:
            self.chunks += 1
            if self.chunks == 3:
                self.third_chunk.set()
            return callback(chunk)

        try:
            return self.inner.handle_chat_completions(request, counted)
        finally:
            self.running = False
            self.returned.set()


@pytest.fixture
async def provider() -> AsyncIterator[EmbeddedProvider]:
    embedded = EmbeddedProvider(EmbeddedSettings(n_ctx=2048))
    await embedded.start()
    yield embedded
    await embedded.close()


async def _counting(provider: EmbeddedProvider) -> CountingRuntime:
    await provider.chat({**REQUEST, "max_tokens": 1})  # loads the model
    runtime = CountingRuntime(provider._server)
    provider._server = runtime
    return runtime


async def test_aclose_stops_generation_before_it_returns(provider: EmbeddedProvider) -> None:
    runtime = await _counting(provider)
    stream = provider.chat_stream({**REQUEST, "max_tokens": LONG, "stream": True})
    assert hasattr(stream, "aclose")
    for _ in range(3):
        await anext(stream)
    await stream.aclose()
    assert not runtime.running  # aclose waited for the runtime to stop
    assert runtime.chunks < STOPPED_WITHIN


async def test_a_cancelled_request_stops_generation(provider: EmbeddedProvider) -> None:
    runtime = await _counting(provider)
    task = asyncio.create_task(provider.chat({**REQUEST, "max_tokens": LONG}))
    assert await asyncio.to_thread(runtime.third_chunk.wait, 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(runtime.returned.wait, 60)
    assert runtime.chunks < STOPPED_WITHIN


async def test_the_runtime_listener_is_a_private_socket(provider: EmbeddedProvider) -> None:
    await provider.chat({**REQUEST, "max_tokens": 1})
    address = provider._server.listening_address  # the runtime's own HTTP listener
    assert address.startswith("unix://")
    path = address.removeprefix("unix://")
    folder = os.path.dirname(path)
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert os.stat(folder).st_uid == os.getuid()
    # And even from inside the folder, nothing but the health check answers without the key.
    assert await asyncio.to_thread(_get_status, path, "/health") == 200
    for route in ("/v1/models", "/props", "/slots", "/metrics", "/v1/chat/completions"):
        assert await asyncio.to_thread(_get_status, path, route) == 401, route
    await provider.close()
    assert not await asyncio.to_thread(os.path.exists, folder)


def _get_status(socket_path: str, route: str) -> int:
    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(10)
            self.sock.connect(socket_path)

    connection = UnixConnection("localhost")
    try:
        connection.request("GET", route)
        return connection.getresponse().status
    finally:
        connection.close()


async def test_a_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    provider = EmbeddedProvider(EmbeddedSettings(model_path=tmp_path / "nowhere.gguf"))
    with pytest.raises(ProviderError) as caught:
        await provider.chat({**REQUEST, "max_tokens": 1})
    await provider.close()
    assert caught.value.code == "model_not_installed"
    assert "nowhere.gguf does not exist" in caught.value.message


async def test_a_broken_model_file_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    provider = EmbeddedProvider(EmbeddedSettings(model_path=broken))
    with pytest.raises(ProviderError) as caught:
        await provider.chat({**REQUEST, "max_tokens": 1})
    await provider.close()
    assert caught.value.code == "model_load_failed"
    assert str(broken) in caught.value.message
    assert "--log-level debug" in caught.value.message


@pytest.mark.parametrize(("cache_prompt", "reused"), [(False, False), (True, True)])
async def test_the_cache_prompt_setting_keeps_alternating_prompts(
    cache_prompt: bool, reused: bool
) -> None:
    """On (the default), two prompts asked in turn are both resumed from the cache the
    second time; off, every prompt is read in full."""
    embedded = EmbeddedProvider(EmbeddedSettings(n_ctx=2048, cache_prompt=cache_prompt))
    topics = ("a dragon", "a lighthouse")
    requests = [
        {**REQUEST, "messages": [{"role": "user", "content": f"Tell me about {t}."}]}
        for t in topics
    ]
    try:
        firsts = [await embedded.chat({**r, "max_tokens": 2}) for r in requests]
        agains = [await embedded.chat({**r, "max_tokens": 2}) for r in requests]
    finally:
        await embedded.close()
    for first, again in zip(firsts, agains, strict=True):
        prompt = again["usage"]["prompt_tokens"]
        cached = (again["usage"].get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        assert prompt == first["usage"]["prompt_tokens"]
        # All but the last token, which is evaluated again for the answer's first.
        assert cached == (prompt - 1 if reused else 0)
