"""Compaction and token counts through the `openai` client: `responses.compact` by input,
chain and conversation; `context_management` compacting inside a turn, with one summary
standing for the past however long the conversation; sealed summaries; input_tokens."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from convostack.testing.upstream import FAKE_MODEL as MODEL
from convostack.testing.upstream import Upstream

HEADER = "Summary of the earlier conversation"
COMPACT_AT: Any = {"context_management": [{"type": "compaction", "compact_threshold": 120}]}


def summaries(messages: list[dict[str, Any]]) -> int:
    return sum(str(m.get("content", "")).startswith(HEADER) for m in messages)


def _sendable(items: Any) -> list[Any]:
    return [item.model_dump(exclude_none=True, warnings=False) for item in items]


def test_compact_by_input_keeps_the_user_messages_and_seals_the_rest(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    compacted = client.responses.compact(
        model=MODEL,
        input=[{"role": "user", "content": "my name is Ada"},
               {"role": "assistant", "content": "hello Ada"},
               {"role": "user", "content": "I like tea"}],
    )  # fmt: skip
    assert compacted.object == "response.compaction"
    assert [i.type for i in compacted.output] == ["message", "message", "compaction"]
    assert compacted.usage.output_tokens > 0
    summarised = upstream.chat_requests()[-1]["messages"][-1]["content"]
    assert "my name is Ada" in summarised
    assert "hello Ada" in summarised
    # Sent back as input: the model sees the summary, not the items it stands for.
    then = [*_sendable(compacted.output), {"role": "user", "content": "and now?"}]
    client.responses.create(model=MODEL, input=then)
    sent = upstream.last_messages()
    assert summaries(sent) == 1
    assert sent[0]["role"] == "system"
    assert sent[-1] == {"role": "user", "content": "and now?"}
    unsummarised = [m for m in sent if not str(m["content"]).startswith(HEADER)]
    assert all("hello Ada" not in str(m["content"]) for m in unsummarised)


def test_compact_by_chain_and_by_conversation(client: openai.OpenAI, upstream: Upstream) -> None:
    first = client.responses.create(model=MODEL, input="remember the number 7")
    by_chain = client.responses.compact(model=MODEL, previous_response_id=first.id)
    assert "remember the number 7" in upstream.chat_requests()[-1]["messages"][-1]["content"]
    assert by_chain.output[-1].type == "compaction"
    conversation = client.conversations.create(
        items=[{"role": "user", "content": "the sky is green here"}]
    )
    by_conversation = client.responses.compact(
        model=MODEL, extra_body={"conversation": conversation.id}
    )
    assert "the sky is green here" in upstream.chat_requests()[-1]["messages"][-1]["content"]
    assert by_conversation.output[-1].type == "compaction"
    # Compacting changes nothing that is kept.
    assert len(list(client.conversations.items.list(conversation.id))) == 1


def test_a_tampered_summary_is_a_400(client: openai.OpenAI) -> None:
    compacted = client.responses.compact(model=MODEL, input="something to keep")
    item = _sendable(compacted.output)[-1]
    item["encrypted_content"] = item["encrypted_content"][:-6] + "AAAAAA"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input=[item])
    assert caught.value.body["param"] == "input[0].encrypted_content"  # type: ignore[index]
    assert caught.value.body["code"] == "invalid_encrypted_content"  # type: ignore[index]


def test_a_long_conversation_keeps_one_summary_and_every_item(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    conversation = client.conversations.create()
    turns = 50
    for n in range(turns):
        response = client.responses.create(
            model=MODEL, input=f"turn {n}: tell me about item {n} please", extra_body=COMPACT_AT,
            conversation=conversation.id,
        )  # fmt: skip
        assert response.status == "completed"
        sent = upstream.last_messages()
        assert summaries(sent) <= 1  # one summary stands for the past, never a chain
        assert len(sent) < 30  # what the model reads stays bounded
    assert sent[-1]["content"].startswith(f"turn {turns - 1}:")
    items = list(client.conversations.items.list(conversation.id, order="asc"))
    kinds = [i.type for i in items]
    assert kinds.count("message") == 2 * turns  # the record keeps everything
    assert 1 <= kinds.count("compaction") < turns


def test_compaction_inside_a_streamed_turn(client: openai.OpenAI) -> None:
    conversation = client.conversations.create(
        items=[{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "ok"}]
    )
    with client.responses.stream(
        model=MODEL, input="go on", conversation=conversation.id, extra_body=COMPACT_AT
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds.index("response.compaction.compacting") < kinds.index("response.output_text.delta")
    assert [i.type for i in final.output] == ["compaction", "message"]


def test_input_tokens_count_what_the_model_receives(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    short = client.responses.input_tokens.count(model=MODEL, input="one two three")
    longer = client.responses.input_tokens.count(
        model=MODEL, input="one two three four five six", instructions="be brief"
    )
    assert short.object == "response.input_tokens"
    assert short.input_tokens < longer.input_tokens
    response = client.responses.create(
        model=MODEL, input="one two three four five six", instructions="be brief"
    )
    assert response.usage is not None
    assert longer.input_tokens == response.usage.input_tokens  # the engine's own count
