"""Stateless replicas on one PostgreSQL database: whatever replica a request lands on, every
item is there once, in one order that every reader sees, each call's and each turn's
items in one block; overlapping turns both succeed, in the order they finish, each having
seen the conversation as it was when it started; a replica killed in the middle of a turn
leaves the whole turn or none of it. The concurrency tests also run on one server on
SQLite, where the same guarantees hold."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.responses import Response

from convostack.testing.replicas import Replica, replica
from convostack.testing.upstream import FAKE_MODEL, Upstream

CONCURRENT_CALLS = 50
CONCURRENT_TURNS = 12


def _text(content: Any) -> str:
    """The text of an item's or a chat message's content (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    return "".join(part["text"] if isinstance(part, dict) else part.text for part in content)


def _items(client: openai.OpenAI, conversation_id: str) -> list[tuple[str, str]]:
    """(id, text) of every item, oldest first, walking every page."""
    listed = client.conversations.items.list(conversation_id, order="asc", limit=7)
    return [(str(item.id), _text(getattr(item, "content", ""))) for item in listed]


def _same_everywhere(
    replicas: tuple[Replica, Replica], conversation_id: str
) -> list[tuple[str, str]]:
    a, b = replicas
    seen = _items(a.client, conversation_id)
    assert _items(b.client, conversation_id) == seen
    ids = [item_id for item_id, _ in seen]
    assert len(ids) == len(set(ids)), "an item is there twice"
    return seen


def _turn(client: openai.OpenAI, conversation_id: str, text: str, *, stream: bool) -> Response:
    if not stream:
        return client.responses.create(model=FAKE_MODEL, conversation=conversation_id, input=text)
    with client.responses.stream(
        model=FAKE_MODEL, conversation=conversation_id, input=text
    ) as events:
        return events.get_final_response()


@pytest.fixture(params=["one-sqlite-server", "two-postgres-replicas"])
def pair(
    request: pytest.FixtureRequest, upstream: Upstream, tmp_path: Path
) -> Iterator[tuple[Replica, Replica]]:
    """Where concurrent clients send their requests: one server on SQLite (the same
    guarantees hold there), or two replicas on PostgreSQL (skipped without one)."""
    if request.param == "two-postgres-replicas":
        yield request.getfixturevalue("replicas")
        return
    with replica(f"sqlite:///{tmp_path / 'one.db'}", upstream.url) as one:
        yield one, one


def test_a_conversation_made_on_one_replica_is_usable_on_the_other_at_once(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    conversation = a.client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "hello"}], metadata={"k": "a"}
    )
    assert b.client.conversations.retrieve(conversation.id).metadata == {"k": "a"}
    b.client.conversations.items.create(
        conversation.id, items=[{"type": "message", "role": "user", "content": "from b"}]
    )
    assert [text for _, text in _items(a.client, conversation.id)] == ["hello", "from b"]
    b.client.conversations.update(conversation.id, metadata={"k": "b"})
    assert a.client.conversations.retrieve(conversation.id).metadata == {"k": "b"}
    b.client.conversations.delete(conversation.id)
    with pytest.raises(openai.NotFoundError):
        a.client.conversations.retrieve(conversation.id)


def test_concurrent_item_creates_on_both_replicas_are_kept_once_in_blocks(
    pair: tuple[Replica, Replica],
) -> None:
    replicas = pair
    conversation = replicas[0].client.conversations.create()

    def create(n: int) -> list[str]:
        client = replicas[n % 2].client
        items = [
            {"type": "message", "role": "user", "content": f"call {n} item {k}"}
            for k in range(1 + n % 3)
        ]
        created = client.conversations.items.create(conversation.id, items=items)  # type: ignore[arg-type]
        return [str(item.id) for item in created.data]

    with ThreadPoolExecutor(CONCURRENT_CALLS) as pool:
        blocks = list(pool.map(create, range(CONCURRENT_CALLS)))
    ids = [item_id for item_id, _ in _same_everywhere(replicas, conversation.id)]
    assert sorted(ids) == sorted(i for block in blocks for i in block)
    for block in blocks:
        start = ids.index(block[0])
        assert ids[start : start + len(block)] == block


def test_concurrent_turns_on_both_replicas_are_serial_blocks_each_seeing_a_prefix(
    pair: tuple[Replica, Replica], upstream: Upstream
) -> None:
    replicas = pair
    conversation = replicas[0].client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "start"}]
    )
    upstream.reset()

    def turn(n: int) -> Response:
        return _turn(replicas[n % 2].client, conversation.id, f"turn {n}", stream=n % 3 == 0)

    with ThreadPoolExecutor(CONCURRENT_TURNS) as pool:
        responses = list(pool.map(turn, range(CONCURRENT_TURNS)))
    items = _same_everywhere(replicas, conversation.id)
    assert len(items) == 1 + 2 * CONCURRENT_TURNS
    ids = [item_id for item_id, _ in items]
    texts = [text for _, text in items]
    for n, response in enumerate(responses):
        start = texts.index(f"turn {n}")  # the turn's input, then its output, adjacent
        assert ids[start + 1 : start + 2] == [item.id for item in response.output]
    # Each turn's model call saw the conversation as it was at some moment: a prefix of
    # the final order that ends between two turns.
    for request in upstream.chat_requests():
        *history, new = [_text(m["content"]) for m in request["messages"]]
        assert new.startswith("turn ")
        assert history == texts[: len(history)]
        assert len(history) % 2 == 1


def test_overlapping_turns_both_succeed_in_the_order_they_finish(
    pair: tuple[Replica, Replica], upstream: Upstream
) -> None:
    a, b = pair
    conversation = a.client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "start"}]
    )
    # A slow turn starts first: by its first event it has read the conversation.
    with a.client.responses.stream(
        model=FAKE_MODEL, conversation=conversation.id, input="drip:0.2"
    ) as slow:
        assert next(iter(slow)).type == "response.created"
        # A fast turn starts and finishes while the slow one is still streaming.
        fast = b.client.responses.create(
            model=FAKE_MODEL, conversation=conversation.id, input="fast"
        )
        slow_response = slow.get_final_response()
    assert fast.output_text == "echo: fast [2 messages]"
    assert slow_response.output_text == "echo: drip:0.2 [2 messages]"  # did not see "fast"
    texts = [text for _, text in _items(a.client, conversation.id)]
    assert texts == ["start", "fast", fast.output_text, "drip:0.2", slow_response.output_text]


def _kill_during_turn(
    doomed: Replica, conversation_id: str, text: str, moment: str | float
) -> Response | None:
    """Runs a streamed turn on `doomed` and SIGKILLs it at `moment`: on the first text
    delta, on `response.completed`, or after that many seconds. The final response if
    the client saw one."""
    if isinstance(moment, float):
        threading.Timer(moment, doomed.process.send_signal, (signal.SIGKILL,)).start()
    final = None
    try:
        with doomed.client.responses.stream(
            model=FAKE_MODEL, conversation=conversation_id, input=text
        ) as events:
            for event in events:
                if event.type == "response.completed":
                    final = event.response
                if event.type == moment:
                    doomed.process.send_signal(signal.SIGKILL)
                    break
    except (openai.APIError, RuntimeError):
        pass  # the connection dropped mid-stream
    doomed.process.wait(timeout=30)
    assert doomed.process.returncode == -signal.SIGKILL
    return final


# Timed kills land anywhere in the turn, its final write included.
@pytest.mark.parametrize(
    "moment", ["response.output_text.delta", "response.completed", 0.5, 1.0, 1.5]
)
def test_a_replica_killed_mid_turn_leaves_the_whole_turn_or_none_of_it(
    replicas: tuple[Replica, Replica], postgres_db: str, upstream: Upstream, moment: str | float
) -> None:
    survivor = replicas[0]
    conversation = survivor.client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "before"}]
    )
    with replica(postgres_db, upstream.url) as doomed:
        final = _kill_during_turn(doomed, conversation.id, "drip:0.2", moment)
    texts = [text for _, text in _items(survivor.client, conversation.id)]
    whole = ["before", "drip:0.2", "echo: drip:0.2 [2 messages]"]
    assert texts in (["before"], whole)
    if moment == "response.output_text.delta":
        assert texts == ["before"]
    if final is not None:  # the client saw the turn finish: it is kept
        assert texts == whole
    # Nothing is left locked: the conversation takes a turn on the survivor at once.
    after = _turn(survivor.client, conversation.id, "after", stream=False)
    assert after.output_text == f"echo: after [{len(texts) + 1} messages]"
