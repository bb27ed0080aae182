"""The `file_search` tool in Responses: the fake model calls it (`call file_search
{...}`), the server searches, the model reads the passages with their file names, and the
answer cites the files; streamed events in order; with a conversation and a chain."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai.types.conversations import ConversationItem
from openai.types.responses import Response, ResponseStreamEvent

from convostack.testing.upstream import FAKE_MODEL as MODEL
from convostack.testing.upstream import Upstream
from convostack.testing.wire import assert_exact


@pytest.fixture(scope="module")
def store_id(client: openai.OpenAI) -> str:
    store = client.vector_stores.create(name="handbook")
    documents = {
        "holidays.md": b"Staff get 30 days of paid holiday each year.",
        "parking.txt": b"Parking permits are issued by the front desk.",
    }
    for name, text in documents.items():
        file_id = client.files.create(file=(name, text), purpose="assistants").id
        done = client.vector_stores.files.create_and_poll(
            file_id=file_id, vector_store_id=store.id, poll_interval_ms=100
        )
        assert done.status == "completed"
    return store.id


def _tools(store_id: str, **extra: Any) -> Any:
    return [{"type": "file_search", "vector_store_ids": [store_id], **extra}]


def test_the_model_reads_the_passages_and_the_answer_cites_the_file(
    client: openai.OpenAI, upstream: Upstream, store_id: str
) -> None:
    upstream.reset()
    response = client.responses.create(
        model=MODEL, tools=_tools(store_id, max_num_results=1),
        input='call file_search {"query": "how many days of paid holiday"}',
    )  # fmt: skip
    call, message = response.output
    assert call.type == "file_search_call"
    assert call.status == "completed"
    assert call.queries == ["how many days of paid holiday"]
    assert call.results is None  # not asked for with include
    assert message.type == "message"
    annotations = message.content[0].annotations  # type: ignore[union-attr]
    assert [a.model_dump(exclude={"index", "file_id"}) for a in annotations] == [
        {"type": "file_citation", "filename": "holidays.md"}
    ]
    tool_message = upstream.chat_requests()[-1]["messages"][-1]
    assert tool_message["role"] == "tool"
    assert "holidays.md" in tool_message["content"]
    assert "30 days of paid holiday" in tool_message["content"]


def test_results_with_include_and_filters(client: openai.OpenAI, store_id: str) -> None:
    response = client.responses.create(
        model=MODEL, tools=_tools(store_id), include=["file_search_call.results"],
        input='call file_search {"queries": ["parking permits", "holiday"]}',
    )  # fmt: skip
    call = response.output[0]
    assert call.type == "file_search_call"
    assert call.queries == ["parking permits", "holiday"]
    assert call.results
    assert {r.filename for r in call.results} == {"parking.txt", "holidays.md"}
    assert all(r.text and r.file_id and r.score is not None for r in call.results)


def test_streaming_events_in_order(client: openai.OpenAI, store_id: str) -> None:
    events = client.responses.create(
        model=MODEL, tools=_tools(store_id), stream=True,
        input='call file_search {"query": "parking"}',
    )  # fmt: skip
    seen = list(events)
    for event in seen:
        assert_exact(ResponseStreamEvent, event.to_dict())
    kinds = [e.type for e in seen if "file_search_call" in e.type or "output_text" in e.type]
    assert [k for n, k in enumerate(kinds) if "delta" not in k and k != kinds[n - 1]] == [
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
        "response.output_text.annotation.added",
        "response.output_text.done",
    ]
    added = [e.to_dict() for e in seen if e.type == "response.output_text.annotation.added"]
    final: Any = seen[-1].to_dict()["response"]
    message = final["output"][-1]
    assert [e["annotation"] for e in added] == message["content"][0]["annotations"]
    assert {e["item_id"] for e in added} == {message["id"]}


def test_with_a_conversation_and_a_chain(
    client: openai.OpenAI, upstream: Upstream, store_id: str
) -> None:
    conversation = client.conversations.create()
    for _ in range(2):
        turn = client.responses.create(
            model=MODEL, tools=_tools(store_id), conversation=conversation.id,
            input='call file_search {"query": "parking"}',
        )  # fmt: skip
        assert turn.output[0].type == "file_search_call"
    items = client.conversations.items.list(conversation.id, order="asc")
    assert [i.type for i in items.data].count("file_search_call") == 2
    first = client.responses.create(
        model=MODEL, tools=_tools(store_id), input='call file_search {"query": "holiday"}'
    )
    second = client.responses.create(
        model=MODEL, tools=_tools(store_id), previous_response_id=first.id,
        input='call file_search {"query": "parking"}',
    )  # fmt: skip
    assert second.status == "completed"
    history = upstream.chat_requests()[-1]["messages"]
    assert sum(m.get("role") == "tool" for m in history) == 2


def test_an_unknown_store_is_a_404_and_bad_filters_a_400(
    client: openai.OpenAI, other_client: openai.OpenAI, store_id: str
) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model=MODEL, tools=_tools("vs_unknown"), input="hi")
    assert missing.value.param == "tools[0].vector_store_ids[0]"
    with pytest.raises(openai.NotFoundError):
        other_client.responses.create(model=MODEL, tools=_tools(store_id), input="hi")
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(
            model=MODEL, tools=_tools(store_id, filters={"type": "eq", "key": 3, "value": 1}),
            input="hi",
        )  # fmt: skip
    assert bad.value.param == "tools[0].filters.key"


def test_a_call_cut_short_by_max_output_tokens_is_not_run(
    client: openai.OpenAI, upstream: Upstream, store_id: str
) -> None:
    words = " ".join(["parking"] * 40)
    conversation = client.conversations.create()
    for stream in (False, True):
        upstream.reset()
        request: Any = {
            "model": MODEL, "tools": _tools(store_id), "max_output_tokens": 16,
            "input": f'call file_search {{"query": "{words}"}}', "conversation": conversation.id,
        }  # fmt: skip
        if stream:
            events = list(client.responses.create(**request, stream=True))
            for event in events:
                assert_exact(ResponseStreamEvent, event.to_dict())
            response = events[-1].response
        else:
            response = client.responses.create(**request)
        assert_exact(Response, response.to_dict())
        assert response.status == "incomplete"
        assert response.incomplete_details.reason == "max_output_tokens"
        [call] = response.output
        assert call.type == "file_search_call"
        assert call.status == "incomplete"
        assert len(upstream.chat_requests()) == 1  # no second round: nothing was searched
    items = client.conversations.items.list(conversation.id, order="asc").data
    assert [i.type for i in items] == ["message", "file_search_call"] * 2
    for item in items:
        assert_exact(ConversationItem, item.to_dict())
