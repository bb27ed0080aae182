"""truncation "auto" drops the oldest items and says so; a client that leaves mid-stream
cancels the upstream call and appends nothing."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import openai
import pytest

from convostack.testing.stack import Target
from convostack.testing.upstream import FAKE_MODEL, Upstream


def _conversation_of(client: openai.OpenAI, count: int) -> str:
    conversation = client.conversations.create()
    for start in range(0, count, 20):
        items: list[Any] = [
            {"role": "user", "content": f"m{n} " + "lorem ipsum dolor " * 5}
            for n in range(start, start + 20)
        ]
        client.conversations.items.create(conversation.id, items=items)
    return conversation.id


def _truncated_turn(http: httpx2.Client, conversation_id: str) -> Any:
    """A turn on the small model (context 400), truncation "auto", 50 output tokens."""
    return http.post(
        "/v1/responses",
        json={"model": "small-model", "input": "newest", "conversation": conversation_id,
              "truncation": "auto", "max_output_tokens": 50},
    ).json()  # fmt: skip


def test_truncation_auto_drops_the_oldest_items_and_says_so(
    client: openai.OpenAI, upstream: Upstream, http: httpx2.Client
) -> None:
    conversation_id = _conversation_of(client, 60)
    response = _truncated_turn(http, conversation_id)
    sent = upstream.last_messages()
    dropped = response["truncation_details"]["dropped_items"]
    assert 0 < dropped < 60
    assert len(sent) == 60 - dropped + 1
    assert sent[0]["content"].startswith(f"m{dropped} ")  # the oldest went first
    assert sent[-1]["content"] == "newest"
    # Nothing was deleted from the conversation itself.
    assert len(list(client.conversations.items.list(conversation_id, limit=100))) == 62

    client.responses.create(model="small-model", input="all", conversation=conversation_id)
    assert len(upstream.last_messages()) == 63  # truncation "disabled": everything is sent


def test_truncation_auto_fits_by_the_engines_own_count(
    client: openai.OpenAI, upstream: Upstream, http: httpx2.Client
) -> None:
    # The fake counts words at /tokenize, as vLLM counts tokens: the turn keeps as many of
    # the newest items as fit the budget (context 400 less max_output_tokens 50) by that
    # count, not by the estimate.
    conversation_id = _conversation_of(client, 60)
    response = _truncated_turn(http, conversation_id)
    words = response["usage"]["input_tokens"]  # the fake's usage counts words too
    assert words <= 350
    assert words + 16 > 350  # one more item (16 words) would not have fitted
    assert len(upstream.last_messages()) == 60 - response["truncation_details"]["dropped_items"] + 1


def test_client_disconnect_cancels_upstream_and_appends_nothing(
    stack_target: Target, client: openai.OpenAI, upstream: Upstream
) -> None:
    if stack_target.mode != "server":
        pytest.skip("the in-process transport reads whole responses; a client cannot leave")
    conversation = client.conversations.create(items=[{"role": "user", "content": "before"}])
    with (
        httpx2.Client(base_url=stack_target.base_url, timeout=30) as raw,
        raw.stream(
            "POST",
            "/responses",
            json={"model": FAKE_MODEL, "input": "drip:0.5", "conversation": conversation.id,
                  "stream": True},
        ) as response,
    ):  # fmt: skip
        assert response.status_code == 200
        for line in response.iter_lines():
            if "response.output_text.delta" in line:
                break  # leave after the first piece of text
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        records = upstream.requests()
        if records and records[-1]["outcome"] == "aborted":
            break
        time.sleep(0.1)
    assert upstream.requests()[-1]["outcome"] == "aborted"
    items = client.conversations.items.list(conversation.id).data
    assert [item.id for item in items] == [items[0].id]
    assert len(items) == 1
