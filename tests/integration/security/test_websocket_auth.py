"""WebSocket mode is authenticated like HTTP: by the bearer key of the upgrade request,
and a key sees only its own principal's responses."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from convostack.testing.stack import Target
from convostack.testing.upstream import FAKE_MODEL as MODEL

from .conftest import KEYS


def _client(target: Target, key: str) -> openai.OpenAI:
    if target.mode != "server":
        pytest.skip("the in-process transport cannot upgrade to a WebSocket")
    return openai.OpenAI(base_url=target.base_url, api_key=key, max_retries=0)


def _last(connection: Any) -> Any:
    for event in connection:
        if event.type in ("response.completed", "error"):
            return event
    raise AssertionError("the connection closed")


def test_a_wrong_key_is_refused_at_the_upgrade(stack_target: Target) -> None:
    client = _client(stack_target, "sk-wrong")
    with pytest.raises(Exception, match="401"), client.responses.connect():
        pass


def test_a_key_chains_only_its_own_responses(stack_target: Target) -> None:
    with _client(stack_target, KEYS.a).responses.connect() as connection:
        connection.response.create(model=MODEL, input="mine")
        mine = _last(connection).response.id
    with _client(stack_target, KEYS.b).responses.connect() as connection:
        connection.response.create(model=MODEL, input="x", previous_response_id=mine)
        assert _last(connection).error.code == "previous_response_not_found"
