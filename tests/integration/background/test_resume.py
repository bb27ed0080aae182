"""Background streams: their events are stored as they are sent, so a client that
dropped its stream resumes with `starting_after` and gets every later event once, in
order; dropping it does not cancel the turn; pruned events are a clear 400."""

from __future__ import annotations

import time
from collections.abc import Iterator

import openai
import pytest
from openai.types.responses import ResponseStreamEvent

from convostack.testing.plugin import configured_client
from convostack.testing.stack import Target
from convostack.testing.upstream import FAKE_MODEL as MODEL
from convostack.testing.upstream import Upstream

from .conftest import SETTINGS


def _numbers(events: list[ResponseStreamEvent]) -> list[int]:
    return [e.sequence_number for e in events]


def _resumed(client: openai.OpenAI, response_id: str, after: int) -> list[ResponseStreamEvent]:
    return list(client.responses.retrieve(response_id, stream=True, starting_after=after))


def test_a_background_stream_resumes_after_any_event_with_no_gap(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model=MODEL, input="a few words to stream", background=True, stream=True
        )
    )
    assert _numbers(events) == list(range(len(events)))
    first, last = events[0], events[-1]
    assert first.type == "response.created"
    assert first.response.status == "queued"
    assert last.type == "response.completed"
    assert last.response.output_text.startswith("echo: a few words to stream")
    for after in (0, len(events) // 2, len(events) - 1):
        again = _resumed(client, first.response.id, after)
        assert _numbers(again) == list(range(after + 1, len(events)))
        assert [e.type for e in again] == [e.type for e in events[after + 1 :]]


def test_a_dropped_stream_does_not_cancel_and_resumes_live(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()
    stream = client.responses.create(
        model=MODEL, input="drip:0.1", conversation=conversation.id, background=True,
        stream=True,
    )  # fmt: skip
    seen: list[ResponseStreamEvent] = []
    for event in stream:
        seen.append(event)
        if len(seen) == 3:
            break
    stream.close()  # the client goes away mid-turn
    response_id = seen[0].response.id  # type: ignore[union-attr]
    rest = _resumed(client, response_id, seen[-1].sequence_number)
    assert _numbers(seen + rest) == list(range(len(seen) + len(rest)))
    assert rest[-1].type == "response.completed"
    assert client.responses.retrieve(response_id).status == "completed"
    assert len(list(client.conversations.items.list(conversation.id))) == 2


def test_a_cancelled_stream_ends_without_a_terminal_event(
    client: openai.OpenAI, stack_target: Target
) -> None:
    if stack_target.mode != "server":
        pytest.skip("the in-process transport reads whole responses: the turn would end first")
    stream = client.responses.create(model=MODEL, input="slow:3", background=True, stream=True)
    created = next(iter(stream))
    stream.close()
    response_id = created.response.id  # type: ignore[union-attr]
    client.responses.cancel(response_id)
    rest = _resumed(client, response_id, -1)
    assert rest[0].type == "response.created"
    assert "response.completed" not in [e.type for e in rest]
    assert client.responses.retrieve(response_id).status == "cancelled"


def _pruned(client: openai.OpenAI, response_id: str) -> bool:
    try:
        _resumed(client, response_id, 0)
    except openai.BadRequestError:
        return True
    return False


@pytest.fixture(scope="module")
def pruning(request: pytest.FixtureRequest, upstream: Upstream) -> Iterator[openai.OpenAI]:
    providers = [{"type": "openai_compat", "id": "fake", "base_url": upstream.url,
                  "max_retries": 0}]  # fmt: skip
    settings = {**SETTINGS, "providers": providers, "background_events_retention_seconds": 1}
    with configured_client(request.config, settings) as client:
        yield client


def test_pruned_events_are_a_clear_error(pruning: openai.OpenAI) -> None:
    events = list(pruning.responses.create(model=MODEL, input="hi", background=True, stream=True))
    response_id = events[0].response.id  # type: ignore[union-attr]
    deadline = time.monotonic() + 10
    while not _pruned(pruning, response_id):
        assert time.monotonic() < deadline, "never pruned"
        time.sleep(0.3)
    with pytest.raises(openai.BadRequestError) as pruned:
        _resumed(pruning, response_id, 0)
    assert "were deleted" in pruned.value.message
    assert pruning.responses.retrieve(response_id).status == "completed"
