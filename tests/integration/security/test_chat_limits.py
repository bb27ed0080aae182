"""`/v1/chat/completions` under the limits of the Responses API (issue 12, point 7): a
`max_tokens` of 10^9, `n` of 1000, a message past max_item_text_chars or too many tools
is a 400 naming the setting, and nothing goes upstream."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from convostack.config import Config
from convostack.testing.upstream import FAKE_MODEL, Upstream

MAX_CHAT_CHOICES = Config().max_chat_choices  # the default: conftest.py leaves it
HI = [{"role": "user", "content": "hi"}]


def _tool(n: int) -> dict[str, Any]:
    return {"type": "function", "function": {"name": f"f{n}", "parameters": {"type": "object"}}}


def _refused(client: openai.OpenAI, **body: Any) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=FAKE_MODEL, **body)
    return refused.value


@pytest.mark.parametrize(
    ("body", "param", "setting"),
    [
        ({"messages": HI, "max_tokens": 10**9}, "max_tokens", "max_output_tokens"),
        ({"messages": HI, "max_completion_tokens": 1001}, "max_completion_tokens",
         "max_output_tokens"),
        ({"messages": HI, "n": 1000}, "n", "max_chat_choices"),
        ({"messages": HI, "stream": True, "n": MAX_CHAT_CHOICES + 1}, "n", "max_chat_choices"),
        ({"messages": [*HI, {"role": "user", "content": "a" * 100_001}]}, "messages[1]",
         "max_item_text_chars"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "a" * 100_001}]}]},
         "messages[0]", "max_item_text_chars"),
        ({"messages": HI, "tools": [_tool(n) for n in range(5)]}, "tools", "max_tools"),
    ],
)  # fmt: skip
def test_a_chat_completion_past_a_limit_is_refused_before_going_upstream(
    client: openai.OpenAI, upstream: Upstream, body: dict[str, Any], param: str, setting: str
) -> None:
    error = _refused(client, **body)
    assert error.param == param
    assert setting in error.message
    assert upstream.chat_requests() == []


def test_a_chat_completion_at_the_limits_goes_through(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    completion = client.chat.completions.create(
        model=FAKE_MODEL,
        messages=[{"role": "user", "content": "a" * 100_000}],
        max_tokens=1000,
        n=MAX_CHAT_CHOICES,
        tools=[_tool(n) for n in range(4)],  # type: ignore[misc]
    )
    assert completion.choices[0].finish_reason == "stop"
    assert upstream.chat_requests()[-1]["n"] == MAX_CHAT_CHOICES
