"""Tool calls for the embedded model, without the model: the plan (schema and prompt)
that makes a call, and the tool-call deltas made of what the model writes under it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from convostack.providers.base import JSONDict, UnsupportedByProvider
from convostack.providers.embedded_tool_calls import ToolCallChunks, ToolPlan, plan_tools

WEATHER: JSONDict = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TIME: JSONDict = {"type": "function", "function": {"name": "get_time"}}


def request(tool_choice: Any, *tools: JSONDict) -> JSONDict:
    return {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": list(tools),
        "tool_choice": tool_choice,
        "parallel_tool_calls": True,
    }


def chunk(content: str | None = None, finish: str | None = None) -> JSONDict:
    delta = {} if content is None else {"content": content}
    return {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


@pytest.mark.parametrize("choice", [None, "auto", "none"])
def test_without_a_demanded_call_there_is_no_plan_and_no_tools(choice: Any) -> None:
    prepared = request(choice, WEATHER)
    assert plan_tools(prepared) is None
    assert prepared == {"messages": [{"role": "user", "content": "hi"}]}


def test_a_named_function_gets_its_parameters_as_the_schema() -> None:
    prepared = request({"type": "function", "function": {"name": "get_weather"}}, WEATHER, TIME)
    assert plan_tools(prepared) == ToolPlan("get_weather")
    schema = prepared["response_format"]["json_schema"]["schema"]
    assert schema == WEATHER["function"]["parameters"]
    system, user = prepared["messages"]
    assert system["role"] == "system"
    assert "Call the function get_weather: The weather in a city." in system["content"]
    assert user == {"role": "user", "content": "hi"}
    assert "tools" not in prepared
    assert "parallel_tool_calls" not in prepared


def test_required_with_several_functions_lets_the_model_name_one() -> None:
    prepared = request("required", WEATHER, TIME)
    assert plan_tools(prepared) == ToolPlan(None)
    schema = prepared["response_format"]["json_schema"]["schema"]
    names = [option["properties"]["name"]["const"] for option in schema["anyOf"]]
    assert names == ["get_weather", "get_time"]
    time_arguments = schema["anyOf"][1]["properties"]["arguments"]
    assert time_arguments == {"type": "object"}  # no parameters: any object


def test_instructions_join_an_existing_system_message() -> None:
    prepared = request("required", TIME)
    prepared["messages"].insert(0, {"role": "system", "content": "Be brief."})
    plan_tools(prepared)
    assert len(prepared["messages"]) == 2
    assert prepared["messages"][0]["content"].startswith("Be brief.\n\nCall the function")


@pytest.mark.parametrize(
    ("choice", "tools", "param"),
    [
        ({"type": "function", "function": {"name": "nope"}}, [WEATHER], "tool_choice"),
        ("required", [], "tool_choice"),
        ("sometimes", [WEATHER], "tool_choice"),
        ("required", [{"type": "web_search"}], "tools[0]"),
    ],
)
def test_a_call_that_cannot_be_made_names_the_parameter(
    choice: Any, tools: list[JSONDict], param: str
) -> None:
    with pytest.raises(UnsupportedByProvider) as raised:
        plan_tools(request(choice, *tools))
    assert raised.value.param == param


def test_a_named_call_streams_its_arguments_as_they_come() -> None:
    tools = ToolCallChunks(ToolPlan("get_weather"))
    role = tools.convert({"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    assert role is not None
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": None}
    first = tools.convert(chunk('{"city": '))
    second = tools.convert(chunk('"Paris"}'))
    last = tools.convert(chunk(finish="stop"))
    assert first is not None
    assert second is not None
    assert last is not None
    (call,) = first["choices"][0]["delta"]["tool_calls"]
    assert call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    (more,) = second["choices"][0]["delta"]["tool_calls"]
    assert more == {"index": 0, "function": {"arguments": '"Paris"}'}}
    assert last["choices"][0]["finish_reason"] == "tool_calls"
    usage = {"id": "c", "choices": [], "usage": {"total_tokens": 3}}
    assert tools.convert(usage) is usage


def test_a_picked_call_comes_whole_at_the_end() -> None:
    tools = ToolCallChunks(ToolPlan(None))
    assert tools.convert(chunk('{"name": "get_time", ')) is None
    assert tools.convert(chunk('"arguments": {}}')) is None
    last = tools.convert(chunk(finish="stop"))
    assert last is not None
    (call,) = last["choices"][0]["delta"]["tool_calls"]
    assert call["function"] == {"name": "get_time", "arguments": json.dumps({})}
    assert last["choices"][0]["finish_reason"] == "tool_calls"


def test_a_picked_call_cut_off_comes_back_as_text() -> None:
    tools = ToolCallChunks(ToolPlan(None))
    tools.convert(chunk('{"name": "get_ti'))
    last = tools.convert(chunk(finish="length"))
    assert last is not None
    assert last["choices"][0]["delta"] == {"content": '{"name": "get_ti'}
    assert last["choices"][0]["finish_reason"] == "length"
