"""`convostack chat` driven through a pseudo terminal, as a person types: against a
spawned `convostack serve` on the fake upstream, whose answer (`echo: <text> [<n>
messages]`) shows how much history reached the model."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from convostack.testing.stack import serving_on_fake_upstream

TIMEOUT = 15


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving_on_fake_upstream(tmp_path_factory.mktemp("chat-home")) as (_, served):
        yield served


def _chat(url: str, *args: str) -> tuple[pexpect.spawn[str], str]:
    child: pexpect.spawn[str] = pexpect.spawn(
        sys.executable, ["-m", "convostack", "chat", "--url", url, *args],
        encoding="utf-8", timeout=TIMEOUT, dimensions=(40, 200),
    )  # fmt: skip
    child.expect(r"conversation (conv_\w+) · model fake-model")
    match = child.match
    assert isinstance(match, re.Match)
    conversation: str = match.group(1)
    child.expect("> ")
    return child, conversation


def _say(child: pexpect.spawn[str], line: str, *expected: str) -> None:
    child.sendline(line)
    for text in expected:
        child.expect_exact(text)
    child.expect("> ")


def test_a_conversation_kept_across_turns_and_commands(url: str, tmp_path: Path) -> None:
    child, first = _chat(url)
    _say(child, "hello", "echo: hello [1 messages]")
    # The second turn sees the first question and answer: three messages.
    _say(child, "again", "echo: again [3 messages]")
    _say(child, "/history", "user: hello", "assistant: echo: hello [1 messages]", "user: again")
    _say(child, "/model", "model fake-model")
    _say(child, "/model no-such-model", "error: ")
    _say(child, "/new", "conversation conv_")
    _say(child, "fresh start", "echo: fresh start [1 messages]")
    _say(child, "/bogus", "unknown command /bogus")
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    # --conversation picks the first one up again; Ctrl-D ends the session.
    again, same = _chat(url, "--conversation", first, "--model", "fake-model")
    assert same == first
    _say(again, "still there?", "echo: still there? [5 messages]")
    again.sendeof()
    again.expect(pexpect.EOF)
    again.close()
    assert again.exitstatus == 0


def test_the_answer_is_written_as_it_streams(url: str) -> None:
    child, _ = _chat(url)
    # The fake upstream drips its four pieces 0.5 s apart: the first is on screen well
    # before the last.
    child.sendline("drip:0.5")
    child.expect_exact("echo:")
    with pytest.raises(pexpect.TIMEOUT):
        child.expect_exact("[1 messages]", timeout=0.4)
    child.expect_exact(" drip:0.5 [1 messages]")
    child.expect("> ")
    child.sendline("/quit")
    child.expect(pexpect.EOF)
