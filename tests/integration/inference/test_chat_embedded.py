"""Chat Completions on the default text model (the embedded SmolLM2 unless --text-model
says otherwise), through the stock openai client.

Model output is replayed from tests/integration/recordings/ by default, so these run with
no model loaded; `--inference-mode=record` regenerates them with the real model. The
assertions are about structure and behaviour (finish reasons, token counts, JSON that
validates), never about the model's prose.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest
from openai.types.chat import ChatCompletionToolParam

WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
TOOLS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city.",
            "parameters": WEATHER_SCHEMA,
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Get the current time in a time zone.",
            "parameters": {
                "type": "object",
                "properties": {"timezone": {"type": "string"}},
                "required": ["timezone"],
            },
        },
    },
]
PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def test_models_list_has_the_text_model(client: openai.OpenAI, text_model_id: str) -> None:
    models = {model.id: model for model in client.models.list()}
    assert text_model_id in models
    assert models[text_model_id].object == "model"
    assert client.models.retrieve(text_model_id).id == text_model_id


def test_completion_returns_text_and_usage(client: openai.OpenAI, text_model_id: str) -> None:
    completion = client.chat.completions.create(
        model=text_model_id,
        messages=[{"role": "user", "content": "Name one colour of the rainbow."}],
        max_tokens=24,
        temperature=0,
    )
    assert completion.object == "chat.completion"
    assert completion.model == text_model_id
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.message.content.strip()
    assert choice.message.tool_calls is None
    assert choice.finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert 0 < usage.completion_tokens <= 24
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_stream_yields_token_deltas_a_finish_reason_and_usage(
    client: openai.OpenAI, text_model_id: str
) -> None:
    stream = client.chat.completions.create(
        model=text_model_id,
        messages=[{"role": "user", "content": "Write one sentence about the sea."}],
        max_tokens=16,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert all(chunk.model == text_model_id for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1
    with_choices = [chunk for chunk in chunks if chunk.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in with_choices if c.choices[0].delta.content]
    assert len(pieces) >= 3  # token by token, not one block
    assert "".join(pieces).strip()
    finishes = [c.choices[0].finish_reason for c in with_choices if c.choices[0].finish_reason]
    assert finishes == ["length"]
    usage = chunks[-1].usage
    assert usage is not None
    assert not chunks[-1].choices
    assert usage.completion_tokens == 16 == len(pieces)  # one delta per generated token


def test_stream_without_include_usage_has_no_usage(
    client: openai.OpenAI, text_model_id: str
) -> None:
    chunks = list(
        client.chat.completions.create(
            model=text_model_id,
            messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=4,
            temperature=0,
            stream=True,
        )
    )
    assert any(chunk.choices and chunk.choices[0].delta.content for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)
    # The usage-only chunk is dropped, not sent empty, in replay as live.
    assert all(chunk.choices for chunk in chunks)


def test_max_tokens_ends_with_length(client: openai.OpenAI, text_model_id: str) -> None:
    completion = client.chat.completions.create(
        model=text_model_id,
        messages=[{"role": "user", "content": "Tell me a long story about a lighthouse."}],
        max_tokens=5,
        temperature=0,
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 5


def test_stop_sequence_ends_the_answer_before_it(client: openai.OpenAI, text_model_id: str) -> None:
    request: dict[str, Any] = {
        "model": text_model_id,
        "messages": [{"role": "user", "content": "Count from 1 to 10, separated by commas."}],
        "max_tokens": 40,
        "temperature": 0,
    }
    unstopped = client.chat.completions.create(**request)
    full = unstopped.choices[0].message.content or ""
    assert "," in full  # so that the stop below has something to cut
    stopped = client.chat.completions.create(**request, stop=[","])
    text = stopped.choices[0].message.content or ""
    assert stopped.choices[0].finish_reason == "stop"
    assert "," not in text
    assert full.startswith(text)
    assert stopped.usage is not None
    assert unstopped.usage is not None
    assert stopped.usage.completion_tokens < unstopped.usage.completion_tokens


def _validated_arguments(name: str, arguments: str) -> dict[str, Any]:
    parsed = json.loads(arguments)
    function = next(t["function"] for t in TOOLS if t["function"]["name"] == name)
    schema = function.get("parameters", {})
    jsonschema.validate(parsed, schema)
    assert isinstance(parsed, dict)
    return parsed


def test_named_tool_choice_calls_that_tool_with_valid_arguments(
    client: openai.OpenAI, text_model_id: str
) -> None:
    completion = client.chat.completions.create(
        model=text_model_id,
        messages=[{"role": "user", "content": "What is the weather like in Paris?"}],
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=60,
        temperature=0,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None
    assert len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    arguments = _validated_arguments("get_weather", call.function.arguments)
    assert arguments["unit"] in ("celsius", "fahrenheit")


def test_named_tool_choice_streams_the_call(client: openai.OpenAI, text_model_id: str) -> None:
    stream = client.chat.completions.create(
        model=text_model_id,
        messages=[{"role": "user", "content": "What time is it in Tokyo?"}],
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        max_tokens=40,
        temperature=0,
        stream=True,
    )
    names: list[str] = []
    ids: list[str] = []
    arguments: list[str] = []
    finishes: list[str] = []
    for chunk in stream:
        for choice in chunk.choices:
            assert not choice.delta.content
            for call in choice.delta.tool_calls or ():
                assert call.index == 0
                if call.id:
                    ids.append(call.id)
                if call.function and call.function.name:
                    names.append(call.function.name)
                if call.function and call.function.arguments:
                    arguments.append(call.function.arguments)
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    assert names == ["get_time"]
    assert len(ids) == 1
    assert len(arguments) > 1  # streamed in pieces
    _validated_arguments("get_time", "".join(arguments))
    assert finishes == ["tool_calls"]


def test_required_tool_choice_picks_one_of_the_tools(
    client: openai.OpenAI, text_model_id: str
) -> None:
    completion = client.chat.completions.create(
        model=text_model_id,
        messages=[{"role": "user", "content": "What is the weather like in Oslo?"}],
        tools=TOOLS,
        tool_choice="required",
        max_tokens=80,
        temperature=0,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None
    assert len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert call.function.name in ("get_weather", "get_time")
    _validated_arguments(call.function.name, call.function.arguments)


def test_tool_results_in_the_history_are_accepted(
    client: openai.OpenAI, text_model_id: str
) -> None:
    completion = client.chat.completions.create(
        model=text_model_id,
        messages=[
            {"role": "user", "content": "What is the weather like in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_weather1",
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": '{"city": "Paris", "unit": "celsius"}',
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_weather1", "content": "21 degrees, sunny"},
        ],
        tools=TOOLS,
        max_tokens=24,
        temperature=0,
    )
    choice = completion.choices[0]
    assert choice.message.content
    assert choice.message.content.strip()
    assert choice.message.tool_calls is None  # tool_choice "auto": this model answers in text


def test_response_format_json_schema_gives_valid_json(
    client: openai.OpenAI, text_model_id: str
) -> None:
    completion = client.chat.completions.create(
        model=text_model_id,
        messages=[{"role": "user", "content": "Describe a person as JSON."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": PERSON_SCHEMA, "strict": True},
        },
        max_tokens=60,
        temperature=0,
    )
    assert completion.choices[0].finish_reason == "stop"
    content = completion.choices[0].message.content
    assert content is not None
    jsonschema.validate(json.loads(content), PERSON_SCHEMA)


def _refused(
    client: openai.OpenAI, model: str, content: Any, **extra: Any
) -> openai.BadRequestError:
    """The 400 for one user message of `content` with `extra` request fields."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": content}], max_tokens=4, **extra
        )
    return caught.value


def test_image_input_is_a_clear_400(client: openai.OpenAI, text_model_id: str) -> None:
    refused = _refused(
        client,
        text_model_id,
        [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ],
    )
    assert refused.code == "unsupported_content"
    assert refused.param == "messages[0].content[1].type"
    assert "text only" in refused.message


def test_a_prompt_longer_than_the_context_is_a_clear_400(
    client: openai.OpenAI, text_model_id: str
) -> None:
    # 9000 tokens (a digit is a token), over the embedded model's 8192-token context.
    refused = _refused(client, text_model_id, "9" * 9000)
    assert refused.code == "context_length_exceeded"
    assert refused.param == "messages"
    assert "context" in refused.message


def test_a_parameter_the_runtime_rejects_names_it(
    client: openai.OpenAI, text_model_id: str
) -> None:
    assert _refused(client, text_model_id, "Say hello.", n=2).param == "n"


@pytest.mark.parametrize("stream", [False, True])
def test_a_schema_the_runtime_cannot_use_is_a_clear_400(
    client: openai.OpenAI, text_model_id: str, stream: bool
) -> None:
    broken = {"name": "broken", "schema": {"type": "no-such-type"}}
    refused = _refused(
        client,
        text_model_id,
        "Say hello.",
        response_format={"type": "json_schema", "json_schema": broken},
        stream=stream,
    )
    assert refused.code == "invalid_value"
    assert refused.param == "response_format"
    assert "no-such-type" in refused.message
