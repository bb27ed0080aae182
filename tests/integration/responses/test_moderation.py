"""`moderation` on a response: a moderation model the fake upstream serves flags any text
holding the word "forbidden"."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from convostack.testing.upstream import FAKE_MODEL as MODEL
from convostack.testing.upstream import Upstream

MODERATOR = "omni-moderation-latest"


def policy(input_mode: str | None, output_mode: str | None) -> Any:
    chosen: dict[str, Any] = {}
    if input_mode:
        chosen["input"] = {"mode": input_mode}
    if output_mode:
        chosen["output"] = {"mode": output_mode}
    return {"moderation": {"model": MODERATOR, "policy": chosen}}


def test_a_blocked_input_stops_the_turn_and_appends_nothing(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    conversation = client.conversations.create()
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model=MODEL, input="something forbidden", conversation=conversation.id,
            extra_body=policy("block", "block"),
        )  # fmt: skip
    assert caught.value.body["code"] == "moderation_blocked"  # type: ignore[index]
    assert upstream.chat_requests() == []
    assert list(client.conversations.items.list(conversation.id)) == []


def test_a_blocked_output_is_withheld_and_appends_nothing(client: openai.OpenAI) -> None:
    # The fake model echoes the input, so its answer holds the word too.
    conversation = client.conversations.create()
    response = client.responses.create(
        model=MODEL, input="say forbidden", conversation=conversation.id,
        extra_body=policy("score", "block"),
    )  # fmt: skip
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "content_filter"
    assert response.output == []
    assert response.moderation is not None
    assert response.moderation.output.type == "moderation_result"
    assert response.moderation.output.flagged is True
    assert list(client.conversations.items.list(conversation.id)) == []


def test_score_records_both_sides(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL, input="hello", extra_body={"moderation": {"model": MODERATOR}}
    )
    assert response.status == "completed"
    moderation = response.moderation
    assert moderation is not None
    assert moderation.input.type == "moderation_result"
    assert moderation.input.flagged is False
    assert moderation.output.type == "moderation_result"
    assert client.responses.retrieve(response.id).moderation == moderation


def test_block_fails_closed_when_the_model_cannot_moderate(client: openai.OpenAI) -> None:
    blocking: Any = {"moderation": {"model": "no-such-moderator",
                                    "policy": {"input": {"mode": "block"}}}}  # fmt: skip
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=MODEL, input="hello", extra_body=blocking)
    scoring: Any = {"moderation": {"model": "no-such-moderator"}}
    response = client.responses.create(model=MODEL, input="hello", extra_body=scoring)
    assert response.moderation is not None
    assert response.moderation.input.type == "error"
