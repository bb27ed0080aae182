"""Reasoning continuity with `store: false`: sealed with the server's key, opened when it
comes back, refused when changed."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from convostack.testing.upstream import FAKE_MODEL as MODEL
from convostack.testing.upstream import Upstream

INCLUDE: Any = ["reasoning.encrypted_content"]


def test_sealed_reasoning_round_trips_without_storage(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    first = client.responses.create(model=MODEL, input="think about tea", store=False,
                                    include=INCLUDE)  # fmt: skip
    reasoning, answer = first.output
    assert reasoning.type == "reasoning"
    assert reasoning.encrypted_content
    thought = reasoning.content[0].text if reasoning.content else ""
    assert thought
    back: Any = reasoning.model_dump(exclude_none=True)
    said: Any = answer.model_dump(exclude_none=True)
    back["content"] = [{"type": "reasoning_text", "text": "not what I thought"}]  # ignored
    client.responses.create(
        model=MODEL, store=False, include=INCLUDE,
        input=[{"role": "user", "content": "think about tea"}, back,
               said, {"role": "user", "content": "more"}],
    )  # fmt: skip
    sent = upstream.last_messages()
    assert sent[1]["role"] == "assistant"
    assert sent[1]["reasoning_content"] == thought


def test_without_include_there_is_no_encrypted_content(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="think about tea", store=False)
    assert response.output[0].type == "reasoning"
    assert response.output[0].encrypted_content is None


def test_streamed_reasoning_done_carries_it(client: openai.OpenAI) -> None:
    with client.responses.stream(model=MODEL, input="think about tea", include=INCLUDE) as stream:
        done = [e for e in stream if e.type == "response.output_item.done"]
    assert done[0].item.type == "reasoning"
    assert done[0].item.encrypted_content


def test_tampered_encrypted_content_is_a_400(client: openai.OpenAI) -> None:
    first = client.responses.create(model=MODEL, input="think", store=False, include=INCLUDE)
    back: Any = first.output[0].model_dump(exclude_none=True)
    sealed = back["encrypted_content"]
    back["encrypted_content"] = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model=MODEL, input=[back, {"role": "user", "content": "x"}])
    assert raised.value.param == "input[0].encrypted_content"
    assert raised.value.code == "invalid_encrypted_content"


def test_a_sealed_item_in_a_stored_chain_is_opened_for_later_turns(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    first = client.responses.create(model=MODEL, input="think hard", store=False, include=INCLUDE)
    reasoning: Any = first.output[0]
    sealed: Any = {"type": "reasoning", "id": reasoning.id, "summary": [],
                   "encrypted_content": reasoning.encrypted_content}  # fmt: skip
    said: Any = first.output[1].model_dump(exclude_none=True)
    turn: Any = [sealed, said, {"role": "user", "content": "a"}]
    second = client.responses.create(model=MODEL, input=turn)
    client.responses.create(model=MODEL, input="b", previous_response_id=second.id)
    (carrier,) = [m for m in upstream.last_messages() if "reasoning_content" in m]
    assert reasoning.content is not None
    assert carrier["reasoning_content"] == reasoning.content[0].text
