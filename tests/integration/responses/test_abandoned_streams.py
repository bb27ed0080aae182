"""A streamed turn whose client leaves is stopped at once, however fast the upstream is:
nothing is appended, the response is kept as cancelled, the upstream stream is closed.
And an answer without end is cut at the output bound, not kept whole."""

from __future__ import annotations

import time

import httpx2
import openai
import pytest
from openai.types.responses import Response, ResponseInputItemParam

from convostack.testing.stack import Target
from convostack.testing.upstream import FAKE_MODEL as MODEL

FLOOD_KIB = 20_000  # 20 MiB, as fast as the fake can send it


def test_a_client_that_leaves_a_fast_stream_gets_nothing_appended(
    client: openai.OpenAI, stack_target: Target
) -> None:
    if stack_target.mode != "server":
        pytest.skip("the in-process transport reads whole responses; a client cannot leave")
    conversation = client.conversations.create()
    body = {"model": MODEL, "input": f"flood:{FLOOD_KIB}", "conversation": conversation.id,
            "stream": True}  # fmt: skip
    started = time.monotonic()
    response_id = None
    with (
        httpx2.Client(base_url=stack_target.base_url, timeout=10) as http,
        http.stream("POST", "/responses", json=body) as streamed,
    ):
        for line in streamed.iter_lines():
            if '"response.created"' in line and response_id is None:
                response_id = line.split('"id":"', 1)[1].split('"', 1)[0]
            if "response.output_text.delta" in line:
                break  # a client that reads a little, then goes away
    assert response_id is not None
    kept = _kept(client, response_id)
    assert kept.status == "cancelled"
    assert list(client.conversations.items.list(conversation.id)) == []
    assert time.monotonic() - started < 5
    assert kept.output == []  # nothing of an unfinished model call is kept


def _kept(client: openai.OpenAI, response_id: str) -> Response:
    deadline = time.monotonic() + 10
    while True:
        try:
            return client.responses.retrieve(response_id)
        except openai.NotFoundError:
            assert time.monotonic() < deadline, "the response was never kept"
            time.sleep(0.05)


def test_an_answer_past_the_output_bound_ends_incomplete(
    client: openai.OpenAI, stack_target: Target
) -> None:
    # max_item_text_chars is 1 MiB by default: a 2 MiB answer stops there.
    conversation = client.conversations.create()
    input_items: list[ResponseInputItemParam] = [{"role": "user", "content": "flood:2048"}]
    events = list(
        client.responses.create(
            model=MODEL, input=input_items, conversation=conversation.id, stream=True
        )
    )
    assert events[-1].type == "response.incomplete"
    final = events[-1].response
    assert final.status == "incomplete"
    assert final.incomplete_details is not None
    assert final.incomplete_details.reason == "max_output_chars"  # type: ignore[comparison-overlap]
    text = final.output_text
    assert 1_048_576 <= len(text) < 1_048_576 + 2048
    items = list(client.conversations.items.list(conversation.id, order="asc"))
    assert [i.type for i in items] == ["message", "message"]
