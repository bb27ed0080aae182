"""Background responses across `convostack serve` processes (started here, so run once,
with --stack-config=library): a server killed mid-turn (SIGKILL) leaves a lease that
runs out, and the next process fails the turn with a clear error instead of leaving it
`in_progress`; on PostgreSQL, a turn created on one replica is resumed and cancelled on
another, and the one running it stops."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai.types.responses import Response

from convostack.testing.plugin import only_in_library_mode
from convostack.testing.postgres import schema_for_test
from convostack.testing.replicas import Replica, replica
from convostack.testing.upstream import FAKE_MODEL as MODEL
from convostack.testing.upstream import Upstream

ENV = {
    "CONVOSTACK_BACKGROUND_LEASE_SECONDS": "2",
    "CONVOSTACK_BACKGROUND_POLL_SECONDS": "0.2",
    "CONVOSTACK_BACKGROUND_STREAM_POLL_SECONDS": "0.05",
    # Replicas share a sealing key: one seals the request another runs.
    "CONVOSTACK_SEALING_KEY": base64.b64encode(bytes(range(32))).decode(),
}


@pytest.fixture(autouse=True)
def _once(request: pytest.FixtureRequest) -> None:
    only_in_library_mode(request.config, "these tests start processes of their own")


def _poll(client: openai.OpenAI, response_id: str, until: str) -> Response:
    deadline = time.monotonic() + 30
    while True:
        response = client.responses.retrieve(response_id)
        if response.status == until:
            return response
        assert time.monotonic() < deadline, f"still {response.status}"
        time.sleep(0.05)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend (PostgreSQL's is skipped without a server)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'background.db'}"
        return
    with schema_for_test(request.config) as url:
        yield url


def test_a_killed_server_leaves_no_turn_in_progress(upstream: Upstream, db: str) -> None:
    with replica(db, upstream.url, ENV) as first:
        conversation = first.client.conversations.create()
        queued = first.client.responses.create(
            model=MODEL, input="slow:30", conversation=conversation.id, background=True
        )
        _poll(first.client, queued.id, "in_progress")
        first.process.kill()
        first.process.wait()
    with replica(db, upstream.url, ENV) as second:
        failed = _poll(second.client, queued.id, "failed")
        assert failed.error is not None
        assert "stopped before it finished" in failed.error.message
        assert list(second.client.conversations.items.list(conversation.id)) == []
        # The queue still works in the new process.
        again = second.client.responses.create(model=MODEL, input="hi", background=True)
        assert _poll(second.client, again.id, "completed").output_text.startswith("echo: hi")


def test_the_queue_survives_a_restart(upstream: Upstream, db: str) -> None:
    with replica(db, upstream.url, {**ENV, "CONVOSTACK_BACKGROUND_CONCURRENCY": "0"}) as first:
        queued = first.client.responses.create(model=MODEL, input="later", background=True)
        time.sleep(0.5)  # this process runs none
        assert first.client.responses.retrieve(queued.id).status == "queued"
    with replica(db, upstream.url, ENV) as second:
        done = _poll(second.client, queued.id, "completed")
        assert done.output_text.startswith("echo: later")


@pytest.fixture(scope="module")
def pair(request: pytest.FixtureRequest, upstream: Upstream) -> Iterator[tuple[Replica, Replica]]:
    with (
        schema_for_test(request.config) as db,
        replica(db, upstream.url, ENV) as a,
        replica(db, upstream.url, ENV) as b,
    ):
        yield a, b


def test_created_on_one_replica_resumed_and_cancelled_on_another(
    pair: tuple[Replica, Replica],
) -> None:
    a, b = pair
    # Resumed on B, run to its end by whichever replica took it.
    stream = a.client.responses.create(model=MODEL, input="drip:0.05", background=True, stream=True)
    seen = [next(iter(stream)) for _ in range(2)]
    stream.close()
    response_id = seen[0].response.id  # type: ignore[union-attr]
    rest = list(b.client.responses.retrieve(response_id, stream=True, starting_after=1))
    numbers = [e.sequence_number for e in seen + rest]
    assert numbers == list(range(len(numbers)))
    assert rest[-1].type == "response.completed"
    # Cancelled on B while it runs (on A or B): it stops and appends nothing.
    conversation = a.client.conversations.create()
    queued = a.client.responses.create(
        model=MODEL, input="slow:3", conversation=conversation.id, background=True
    )
    _poll(b.client, queued.id, "in_progress")
    assert b.client.responses.cancel(queued.id).status == "cancelled"
    assert b.client.responses.cancel(queued.id).status == "cancelled"
    time.sleep(3.5)  # past the model's answer: nothing of it was kept
    assert a.client.responses.retrieve(queued.id).status == "cancelled"
    assert list(a.client.conversations.items.list(conversation.id)) == []
