"""Every mistake in a responses.create call is a clear 4xx before any model call."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest

from convostack.testing.upstream import FAKE_MODEL as MODEL
from convostack.testing.upstream import Upstream


def test_conversation_and_previous_response_are_mutually_exclusive(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    conversation = client.conversations.create()
    earlier = client.responses.create(model=MODEL, input="x")
    upstream.reset()
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as caught:
            client.responses.create(
                model=MODEL, input="y", conversation=conversation.id,
                previous_response_id=earlier.id, stream=stream,
            )  # fmt: skip
        assert caught.value.code == "mutually_exclusive_parameters"
        assert caught.value.param is None
    assert upstream.chat_requests() == []


def test_unknown_previous_response(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input="y", previous_response_id="resp_nope")
    assert caught.value.code == "previous_response_not_found"
    assert caught.value.param == "previous_response_id"
    assert caught.value.message.endswith("Previous response with id 'resp_nope' not found.")


def test_conversation_id_without_prefix(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input="y", conversation="abc")
    assert caught.value.code == "invalid_value"
    assert caught.value.param == "conversation"
    assert "Expected an ID that begins with 'conv'" in caught.value.message


def test_model_missing_or_unknown(client: openai.OpenAI, http: httpx2.Client) -> None:
    response = http.post("/v1/responses", json={"input": "x"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_required_parameter"
    assert response.json()["error"]["param"] == "model"
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="no-such-model", input="x", stream=True)
    assert caught.value.code == "model_not_found"
    assert "GET /v1/models" in caught.value.message


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"input": "x", "n": 2}, "n", "unknown_parameter"),
        ({"messages": [{"role": "user", "content": "x"}]}, "messages", "unsupported_parameter"),
        ({"input": "x", "max_output_tokens": 8}, "max_output_tokens", "invalid_value"),
        ({"input": "x", "temperature": 3}, "temperature", "invalid_value"),
        ({"input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type", "unsupported_value"),
        ({"input": "x", "tools": [{"type": "function"}]}, "tools[0].name",
         "missing_required_parameter"),
        ({"input": "x", "tool_choice": {"type": "function", "name": "nope"}}, "tool_choice",
         "invalid_value"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role", "invalid_value"),
        ({"input": "x", "metadata": {str(n): "v" for n in range(17)}}, "metadata",
         "object_above_max_properties"),
        ({"input": "x", "text": {"format": {"type": "xml"}}}, "text.format.type",
         "invalid_value"),
        ({"input": "x", "include": ["nothing"]}, "include[0]", "invalid_value"),
        ({"input": "x", "background": True, "store": False}, "store", "invalid_value"),
        ({"input": ""}, None, "missing_required_parameter"),
        ({"input": []}, None, "missing_required_parameter"),
    ],
)  # fmt: skip
def test_bad_requests(
    http: httpx2.Client, upstream: Upstream, body: dict[str, Any], param: str | None, code: str
) -> None:
    upstream.reset()
    response = http.post("/v1/responses", json={"model": MODEL, **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code)
    assert error["type"] == "invalid_request_error"
    assert upstream.chat_requests() == []


def test_unknown_response_routes_are_404(client: openai.OpenAI, http: httpx2.Client) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_unknown")
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list("resp_unknown")
    assert http.delete("/v1/responses/resp_unknown").status_code == 404
    assert http.get("/v1/responses/not-a-response").status_code == 400


def test_cancel_is_refused_for_foreground_responses(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="x")
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(response.id)
