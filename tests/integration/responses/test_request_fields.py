"""Every field of today's ResponseCreateParams is accepted (never "unknown parameter"),
sent with a value or as null, and the tool_choice forms other than a function."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest

from convostack.testing.upstream import FAKE_MODEL as MODEL
from convostack.testing.upstream import Upstream

FIELDS: list[tuple[str, Any]] = [
    ("context_management", [{"type": "compaction", "compact_threshold": 100_000}]),
    ("background_options", {"completion_window": "soonest", "continuation_id": "c-1"}),
    ("image", {"context_compression": "auto"}),
    ("prompt_cache_options", {"mode": "implicit", "ttl": "30m"}),
    ("access_programs", {"cyber": "standard"}),
    ("prompt_cache_key", "user-42"),
    ("prompt_cache_retention", "24h"),
    ("safety_identifier", "user-42"),
    ("service_tier", "auto"),
    ("top_logprobs", 0),
    ("stream_options", None),
    ("reasoning", {"effort": "low", "summary": "auto"}),
]


@pytest.mark.parametrize(("field", "value"), FIELDS, ids=[f for f, _ in FIELDS])
def test_a_field_openai_defines_is_accepted(http: httpx2.Client, field: str, value: Any) -> None:
    for sent in (value, None):
        answer = http.post("/v1/responses", json={"model": MODEL, "input": "hi", field: sent})
        assert answer.status_code == 200, answer.text


FUNCTIONS: Any = [
    {"type": "function", "name": name, "parameters": {"type": "object", "properties": {}}}
    for name in ("alpha", "beta", "gamma")
]


def test_allowed_tools_offers_only_those(client: openai.OpenAI, upstream: Upstream) -> None:
    response = client.responses.create(
        model=MODEL, input="hello", tools=FUNCTIONS,
        tool_choice={"type": "allowed_tools", "mode": "required",
                     "tools": [{"type": "function", "name": "beta"}]},
    )  # fmt: skip
    sent = upstream.chat_requests()[-1]
    assert [t["function"]["name"] for t in sent["tools"]] == ["beta"]
    assert sent["tool_choice"] == "required"
    assert response.tool_choice.type == "allowed_tools"  # type: ignore[union-attr]
    assert [i.type for i in response.output] == ["function_call"]


@pytest.mark.parametrize(
    ("choice", "param"),
    [
        ({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "x"}]},
         "tool_choice.tools[0]"),
        ({"type": "custom", "name": "apply_patch"}, "tool_choice"),
        ({"type": "file_search"}, "tool_choice"),
        ({"type": "function", "name": "nope"}, "tool_choice"),
    ],
)  # fmt: skip
def test_a_tool_choice_naming_what_is_not_in_tools_is_a_400(
    client: openai.OpenAI, choice: Any, param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input="hi", tools=FUNCTIONS, tool_choice=choice)
    assert caught.value.body["param"] == param  # type: ignore[index]


def test_prompt_cache_key_reaches_the_engine(client: openai.OpenAI, upstream: Upstream) -> None:
    client.responses.create(model=MODEL, input="hi", prompt_cache_key="user-42")
    assert upstream.chat_requests()[-1]["prompt_cache_key"] == "user-42"
    client.responses.create(model=MODEL, input="hi")
    assert "prompt_cache_key" not in upstream.chat_requests()[-1]
