"""`namespace` tools: flattened to unique function names for the model, restored on the
way out."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from convostack.testing.upstream import FAKE_MODEL as MODEL
from convostack.testing.upstream import Upstream

CRM: Any = {
    "type": "namespace", "name": "crm", "description": "Customer records",
    "tools": [
        {"type": "function", "name": "get_customer",
         "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}},
        {"type": "custom", "name": "note"},
    ],
}  # fmt: skip
PLAIN: Any = {"type": "function", "name": "get_customer"}


def test_a_namespaced_call_is_restored_and_its_output_reaches_the_model(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    first = client.responses.create(model=MODEL, input="call crm__get_customer", tools=[CRM, PLAIN])
    offered = [t["function"]["name"] for t in upstream.chat_requests()[-1]["tools"]]
    assert offered == ["crm__get_customer", "crm__note", "get_customer"]
    (call,) = first.output
    assert call.type == "function_call"
    assert (call.name, call.namespace) == ("get_customer", "crm")
    second = client.responses.create(
        model=MODEL,
        tools=[CRM, PLAIN],
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Ada"}],
    )
    sent = upstream.last_messages()
    assert sent[1]["tool_calls"][0]["function"]["name"] == "crm__get_customer"
    assert sent[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "Ada"}
    assert second.output_text.startswith("echo")


def test_a_namespaced_custom_tool(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL, input='call crm__note {"input": "hi"}', tools=[CRM]
    )
    (call,) = response.output
    assert call.type == "custom_tool_call"
    assert (call.name, call.namespace, call.input) == ("note", "crm", "hi")


def test_tool_choice_forms_that_name_a_namespace(client: openai.OpenAI, upstream: Upstream) -> None:
    choice: Any = {"type": "function", "name": "get_customer", "namespace": "crm"}
    other: Any = {**choice, "namespace": "other"}
    client.responses.create(model=MODEL, input="x", tools=[CRM, PLAIN], tool_choice=choice)
    assert upstream.chat_requests()[-1]["tool_choice"] == {
        "type": "function", "function": {"name": "crm__get_customer"}}  # fmt: skip
    allowed: Any = {"type": "allowed_tools", "mode": "auto",
                    "tools": [{"type": "namespace", "name": "crm"}]}  # fmt: skip
    client.responses.create(model=MODEL, input="x", tools=[CRM, PLAIN], tool_choice=allowed)
    offered = [t["function"]["name"] for t in upstream.chat_requests()[-1]["tools"]]
    assert offered == ["crm__get_customer", "crm__note"]
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model=MODEL, input="x", tools=[CRM],
                                tool_choice=other)  # fmt: skip
    assert raised.value.param == "tool_choice"


@pytest.mark.parametrize(
    ("tools", "param"),
    [
        ([{**CRM, "tools": []}], "tools[0].tools"),
        ([{**CRM, "tools": [{"type": "mcp", "server_label": "x"}]}], "tools[0].tools[0].type"),
        ([{**CRM, "tools": [PLAIN, PLAIN]}], "tools[0].tools[1].name"),
        ([CRM, {"type": "function", "name": "crm__note"}], "tools[1].name"),
        ([{**CRM, "name": "has space"}], "tools[0].name"),
    ],
)
def test_bad_namespaces_are_400s(client: openai.OpenAI, tools: Any, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model=MODEL, input="x", tools=tools)
    assert raised.value.param == param
