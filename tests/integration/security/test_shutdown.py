"""SIGTERM lets in-flight requests finish (within the server's grace period) and loses
nothing: a spawned server with turns in flight against a slow upstream is stopped, every
turn completes, the process exits cleanly, and a new server on the same database finds
every turn kept. Runs a server of its own, whatever --stack-config says."""

from __future__ import annotations

import concurrent.futures
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
import yaml

from convostack.config import Config
from convostack.testing.stack import free_port, server_process
from convostack.testing.upstream import FAKE_MODEL, Upstream

KEY = "sk-sec-team-a-0123456789abcdef"  # team-a, see conftest.py
SHUTDOWN_GRACE_SECONDS = Config().shutdown_grace_seconds


@contextmanager
def served(home: Path, settings: dict[str, Any]) -> Iterator[tuple[Any, str]]:
    config = home / "config.yaml"
    config.write_text(yaml.safe_dump(settings))
    port = free_port()
    with server_process(port, home, ("--config", str(config))) as process:
        yield process, f"http://127.0.0.1:{port}/v1"


def _client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0, timeout=60)


def _turn(base_url: str, conversation: str, text: str, stream: bool) -> str:
    client = _client(base_url)
    if not stream:
        response = client.responses.create(model=FAKE_MODEL, input=text, conversation=conversation)
        return str(response.status)
    events = list(client.responses.create(model=FAKE_MODEL, input=text, conversation=conversation,
                                          stream=True))  # fmt: skip
    return events[-1].type


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


def test_sigterm_lets_in_flight_turns_finish_and_loses_nothing(
    home: Path, settings: dict[str, Any], upstream: Upstream
) -> None:
    settings = {**settings, "db": f"sqlite:///{home / 'shutdown.db'}"}
    # Streams that drip for about 2.5 s, and plain turns that wait 2 s for the model.
    turns = [("drip:0.35", True), ("drip:0.35", True), ("slow:2", False), ("slow:2", False)]
    with served(home, settings) as (process, base_url):
        client = _client(base_url)
        conversations = [client.conversations.create().id for _ in turns]
        with concurrent.futures.ThreadPoolExecutor(len(turns)) as pool:
            futures = [
                pool.submit(_turn, base_url, conversation, text, stream)
                for conversation, (text, stream) in zip(conversations, turns, strict=True)
            ]
            deadline = time.monotonic() + 20
            while len(upstream.chat_requests()) < len(turns):  # all at the model
                assert time.monotonic() < deadline, "the turns never reached the upstream"
                time.sleep(0.05)
            stopped_at = time.monotonic()
            process.send_signal(signal.SIGTERM)
            # New connections are refused at once...
            refused = False
            while not refused and time.monotonic() - stopped_at < 2:
                try:
                    httpx2.get(base_url + "/health", timeout=0.5)
                    time.sleep(0.05)
                except httpx2.TransportError:
                    refused = True
            assert refused, "the server still accepted connections after SIGTERM"
            # ...while the turns in flight finish.
            outcomes = [future.result(timeout=SHUTDOWN_GRACE_SECONDS + 10) for future in futures]
        assert outcomes == ["response.completed", "response.completed", "completed", "completed"]
        assert process.wait(timeout=SHUTDOWN_GRACE_SECONDS + 10) == 0
        assert time.monotonic() - stopped_at < SHUTDOWN_GRACE_SECONDS
    log = next(home.glob("server-*.log")).read_text()
    assert "Traceback" not in log

    with served(home, settings) as (_, base_url):  # the same database, a new process
        client = _client(base_url)
        for conversation, (text, _) in zip(conversations, turns, strict=True):
            items = client.get(f"/conversations/{conversation}/items?order=asc", cast_to=dict)
            texts = [item["content"][0]["text"] for item in items["data"]]
            assert texts == [text, f"echo: {text} [1 messages]"]


def test_requests_still_running_when_the_grace_period_ends_are_cut_off_and_leave_nothing(
    home: Path, settings: dict[str, Any], upstream: Upstream
) -> None:
    grace = 1
    settings = {**settings, "db": f"sqlite:///{home / 'grace.db'}", "shutdown_grace_seconds": grace}
    with served(home, settings) as (process, base_url):
        conversation = _client(base_url).conversations.create().id
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            turn = pool.submit(_turn, base_url, conversation, "slow:30", False)
            deadline = time.monotonic() + 20
            while not upstream.chat_requests():
                assert time.monotonic() < deadline, "the turn never reached the upstream"
                time.sleep(0.05)
            stopped_at = time.monotonic()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=grace + 10) == 0
            stopped_in = time.monotonic() - stopped_at
            with pytest.raises(openai.InternalServerError) as cut:
                turn.result(timeout=10)
        assert cut.value.status_code == 503
        assert "stopped before this request was finished" in cut.value.message
        assert grace <= stopped_in < grace + 5
    with served(home, settings) as (_, base_url):  # nothing of the cut turn was kept
        items = _client(base_url).conversations.items.list(conversation)
        assert items.data == []
