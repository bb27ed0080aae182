"""Faults of the model's upstream: a timeout (before any output, and mid-stream), a refused
connection, an HTTP 500, an error chunk, a stream cut off mid-way. Each gives a clear error
(an OpenAI error body, or `response.failed` with an `error` once a stream has started),
keeps the failed response, and leaves the conversation exactly as it was.

(tests/integration/responses/ covers a 500 and a refused connection without a stream and
a broken stream; these cover every fault in both forms, and the timeouts.)
"""

from __future__ import annotations

import time
from typing import Any

import httpx2
import openai
import pytest

from convostack.testing.upstream import FAKE_MODEL, Upstream

PROVIDER_TIMEOUT = 1.0  # the 'slow' provider's timeout, as configured in conftest.py

# (name, model, input): the fake upstream reads the fault from the input text.
FAULTS = [
    ("timeout before any output", "slow-model", "slow:3"),
    ("timeout mid-stream", "slow-model", "drip:2"),
    ("connection refused", "dead-model", "hello"),
    ("http 500", FAKE_MODEL, "fail500"),
    ("error chunk", FAKE_MODEL, "error-chunk"),
    ("stream cut off", FAKE_MODEL, "break"),
]
# What the client sees without a stream: the upstream's failure, as a gateway error.
STATUS = {"slow:3": 504, "drip:2": 200, "hello": 502, "fail500": 502, "error-chunk": 200,
          "break": 502}  # fmt: skip


def _items(client: openai.OpenAI, conversation_id: str) -> list[Any]:
    return [i.model_dump() for i in client.conversations.items.list(conversation_id, limit=100)]


@pytest.fixture
def conversation(client: openai.OpenAI) -> str:
    conversation = client.conversations.create(items=[{"role": "user", "content": "before"}])
    client.responses.create(model=FAKE_MODEL, input="a good turn", conversation=conversation.id)
    return conversation.id


@pytest.mark.parametrize(("name", "model", "text"), FAULTS, ids=[f[0] for f in FAULTS])
def test_a_failed_stream_says_why_and_changes_nothing(
    client: openai.OpenAI, conversation: str, name: str, model: str, text: str
) -> None:
    before = _items(client, conversation)
    started = time.monotonic()
    events = list(
        client.responses.create(model=model, input=text, conversation=conversation, stream=True)
    )
    assert time.monotonic() - started < 10 * PROVIDER_TIMEOUT
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.failed"
    assert types.count("response.failed") == 1
    assert [e.sequence_number for e in events] == list(range(len(events)))
    failed = events[-1]
    assert failed.type == "response.failed"
    assert failed.response.status == "failed"
    assert failed.response.error is not None
    assert failed.response.error.code == "server_error"
    message = failed.response.error.message
    assert "Upstream '" in message, message  # names the provider the operator must look at
    if "timeout" in name:
        assert f"{PROVIDER_TIMEOUT:g} seconds" in message
    assert _items(client, conversation) == before
    kept = client.responses.retrieve(failed.response.id)
    assert kept.status == "failed"
    assert kept.error == failed.response.error


@pytest.mark.parametrize(("name", "model", "text"), FAULTS, ids=[f[0] for f in FAULTS])
def test_a_failed_turn_without_a_stream_is_an_error_and_changes_nothing(
    http: httpx2.Client,
    client: openai.OpenAI,
    headers_a: dict[str, str],
    conversation: str,
    name: str,
    model: str,
    text: str,
) -> None:
    before = _items(client, conversation)
    response = http.post(
        "/v1/responses",
        json={"model": model, "input": text, "conversation": conversation},
        headers=headers_a,
    )
    if STATUS[text] == 200:
        # Without a stream the fake sends these two faults as whole, healthy answers.
        assert response.status_code == 200
        assert len(_items(client, conversation)) == len(before) + 2
        return
    assert response.status_code == STATUS[text], response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "server_error"
    assert error["code"] in ("upstream_timeout", "upstream_unavailable", "upstream_error")
    assert response.headers["x-should-retry"] == "false"  # our provider client retried already
    assert _items(client, conversation) == before


def test_a_failed_turn_can_be_retried(client: openai.OpenAI, upstream: Upstream) -> None:
    """After any failure the conversation takes the next turn as if nothing happened."""
    conversation = client.conversations.create(items=[{"role": "user", "content": "before"}])
    for _, model, text in FAULTS:
        list(client.responses.create(model=model, input=text, conversation=conversation.id,
                                     stream=True))  # fmt: skip
    upstream.reset()
    after = client.responses.create(model=FAKE_MODEL, input="now", conversation=conversation.id)
    assert after.output_text == "echo: now [2 messages]"
    assert [m["content"] for m in upstream.last_messages()] == ["before", "now"]
