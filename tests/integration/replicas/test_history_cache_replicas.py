"""Each replica keeps the histories it served (`responses/history_cache.py`); another
replica's appends and deletes reach the model on the next turn all the same, by the
version check every turn makes. Two servers on one SQLite file, and two replicas on
PostgreSQL (skipped without one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from convostack.testing.replicas import Replica, replica
from convostack.testing.upstream import FAKE_MODEL, Upstream, listed_texts, text_of


@pytest.fixture(params=["two-sqlite-servers", "two-postgres-replicas"])
def two(
    request: pytest.FixtureRequest, upstream: Upstream, tmp_path: Path
) -> Iterator[tuple[Replica, Replica]]:
    if request.param == "two-postgres-replicas":
        yield request.getfixturevalue("replicas")
        return
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    with replica(db, upstream.url) as a, replica(db, upstream.url) as b:
        yield a, b


def test_another_replicas_appends_and_deletes_reach_the_model(
    two: tuple[Replica, Replica], upstream: Upstream
) -> None:
    a, b = (r.client for r in two)
    conversation = a.conversations.create(items=[{"role": "user", "content": "start"}])

    def turn_on_a(text: str) -> None:
        a.responses.create(model=FAKE_MODEL, conversation=conversation.id, input=text)
        assert upstream.last_texts() == [*listed_texts(b, conversation.id)[:-2], text]

    turn_on_a("a1")
    turn_on_a("a2")  # a keeps the history now
    b.conversations.items.create(conversation.id, items=[{"role": "user", "content": "by b"}])
    turn_on_a("a3")
    assert "by b" in upstream.last_texts()
    b.responses.create(model=FAKE_MODEL, conversation=conversation.id, input="b turn")
    turn_on_a("a4")
    assert "b turn" in upstream.last_texts()
    listed = b.conversations.items.list(conversation.id, order="asc").data
    gone = [item for item in listed if text_of(getattr(item, "content", "")) == "by b"]
    assert gone
    assert gone[0].id is not None
    b.conversations.items.delete(gone[0].id, conversation_id=conversation.id)
    turn_on_a("a5")
    assert "by b" not in upstream.last_texts()
    # And b, which served a turn before a's last ones, sees them too.
    b.responses.create(model=FAKE_MODEL, conversation=conversation.id, input="b again")
    assert upstream.last_texts() == [*listed_texts(a, conversation.id)[:-2], "b again"]


def test_a_chain_kept_by_one_replica_follows_a_delete_on_the_other(
    two: tuple[Replica, Replica], upstream: Upstream
) -> None:
    a, b = (r.client for r in two)
    previous = None
    responses = []
    for n in range(4):  # alternately on each replica: each keeps what it served
        client = a if n % 2 == 0 else b
        response = client.responses.create(
            model=FAKE_MODEL, input=f"r{n}", previous_response_id=previous
        )
        responses.append(response)
        previous = response.id
    assert upstream.last_texts()[::2] == ["r0", "r1", "r2", "r3"]
    a.responses.create(model=FAKE_MODEL, input="a again", previous_response_id=responses[2].id)
    assert upstream.last_texts()[::2] == ["r0", "r1", "r2", "a again"]
    b.responses.delete(responses[1].id)
    a.responses.create(model=FAKE_MODEL, input="after", previous_response_id=responses[2].id)
    assert upstream.last_texts() == ["r2", responses[2].output_text, "after"]
