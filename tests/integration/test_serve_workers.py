"""`convostack serve --workers N`: several processes on one port and one database, one
line at start, a clean stop, and a worker that dies replaced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path

import openai

from convostack.testing.stack import serving_on_fake_upstream
from convostack.testing.upstream import FAKE_MODEL

WORKERS = 3


def _children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(child) for child in text.split()}


def _serving(home: Path, *args: str) -> AbstractContextManager[tuple[subprocess.Popen[bytes], str]]:
    return serving_on_fake_upstream(home, *args, models=(FAKE_MODEL,))


def _until(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_workers_share_the_port_and_the_conversation(tmp_path: Path) -> None:
    with _serving(tmp_path, "--workers", str(WORKERS)) as (process, url):
        _until(lambda: len(_children(process.pid)) == WORKERS)
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0)
        conversation = client.conversations.create().id

        def append(n: int) -> str:
            # A new connection each time: the kernel spreads them over the workers.
            with openai.OpenAI(base_url=url, api_key="none", max_retries=0) as own:
                item = own.conversations.items.create(
                    conversation, items=[{"role": "user", "content": f"m{n}"}]
                )
                return str(item.data[0].id)

        with ThreadPoolExecutor(max_workers=12) as pool:
            appended = list(pool.map(append, range(60)))
        listed = [str(i.id) for i in client.conversations.items.list(conversation, order="asc")]
        assert sorted(listed) == sorted(appended)
        assert len(set(listed)) == 60
        turn = client.responses.create(model=FAKE_MODEL, conversation=conversation, input="hi")
        assert turn.output_text == "echo: hi [61 messages]"
        workers = _children(process.pid)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=40)
    assert process.returncode == 0
    log = output.decode()
    assert log.count("serving at") == 1
    assert f"serving at {url} (database " in log
    assert f"{WORKERS} workers)" in log
    assert log.count("convostack stopped") == 1
    assert "Traceback" not in log
    for pid in workers:  # every worker gone, not orphaned
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def _read_until(process: subprocess.Popen[bytes], text: str) -> str:
    assert process.stdout is not None
    seen: list[str] = []
    while text not in (line := process.stdout.readline().decode()):
        assert line, "".join(seen)
        seen.append(line)
    return line


def test_a_worker_that_dies_is_replaced(tmp_path: Path) -> None:
    with _serving(tmp_path, "--workers", "2") as (process, url):
        _read_until(process, "serving at")  # both workers serve
        first = _children(process.pid)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        _until(lambda: len(_children(process.pid) - {victim}) == 2)
        assert victim not in _children(process.pid)
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0)
        for _ in range(10):  # whichever worker takes the connection, it answers
            with openai.OpenAI(base_url=url, api_key="none", max_retries=0) as own:
                assert own.conversations.create().object == "conversation"
        client.close()
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=40)
    assert process.returncode == 0
    assert f"worker {victim} ended (exit -9); starting another" in output.decode()


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with _serving(tmp_path / "first", "--workers", "2") as (_, url):
        port = url.rsplit(":", 1)[1].split("/")[0]
        result = subprocess.run(
            [sys.executable, "-m", "convostack", "serve", "--port", port, "--workers", "2",
             "--upstream", "http://127.0.0.1:9/v1"],
            env={"CONVOSTACK_HOME": str(tmp_path / "second"), "PATH": "/usr/bin:/bin"},
            capture_output=True, timeout=30,
        )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert lines == [f"Error: could not listen on 127.0.0.1:{port}: Address already in use."]
