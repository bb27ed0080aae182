"""The fake upstream's /v1/responses (for benchmarks of peers that call it): the stock
openai client reads its answers and its event stream."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from convostack.testing.fake_upstream import fake_upstream_server


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    with fake_upstream_server() as url:
        yield openai.OpenAI(base_url=url, api_key="none", max_retries=0)


def test_counts_the_input_items(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="fake-model",
        input=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "input_text", "text": "second"}]},
        ],
    )
    assert response.status == "completed"
    assert response.output_text == "echo: second [3 items]"
    assert response.usage is not None
    assert response.usage.output_tokens == 4


def test_streams_the_full_event_sequence(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="fake-model", input="hi there", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "echo: hi there [1 items]"
