"""A smoke test of the real embedded model, through the stock openai client: one short
completion, streaming and not. `make test` runs it with --inference-mode=live, in-process
and against a spawned `convostack serve`; in other modes it is skipped.
"""

from __future__ import annotations

import time

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from convostack.testing.stack import Target

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Write one sentence about the sea."}
]


def test_completion_streaming_and_not_give_the_same_text(
    client: openai.OpenAI, text_model_id: str
) -> None:
    completion = client.chat.completions.create(
        model=text_model_id, messages=MESSAGES, max_tokens=24, temperature=0
    )
    text = completion.choices[0].message.content
    assert text
    assert text.strip()
    assert completion.usage is not None
    assert 0 < completion.usage.completion_tokens <= 24

    chunks = list(
        client.chat.completions.create(
            model=text_model_id,
            messages=MESSAGES,
            max_tokens=24,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert len([p for p in pieces if p]) >= 3
    # Temperature 0 is byte-deterministic: streamed or not, asked once or twice.
    assert "".join(pieces) == text
    streamed = chunks[-1].usage
    assert streamed is not None
    # The same counts; only the part resumed from the prompt cache differs.
    assert (streamed.prompt_tokens, streamed.completion_tokens, streamed.total_tokens) == (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
        completion.usage.total_tokens,
    )


def test_same_seed_same_text_at_temperature_above_zero(
    client: openai.OpenAI, text_model_id: str
) -> None:
    def sample(seed: int) -> str:
        completion = client.chat.completions.create(
            model=text_model_id,
            messages=MESSAGES,
            max_tokens=24,
            temperature=1.0,
            top_p=0.95,
            seed=seed,
        )
        return completion.choices[0].message.content or ""

    first = sample(7)
    assert sample(7) == first
    assert any(sample(seed) != first for seed in (8, 9, 10))


def test_closing_a_stream_stops_the_generation(
    client: openai.OpenAI, text_model_id: str, stack_target: Target
) -> None:
    if stack_target.mode == "library":
        pytest.skip("the in-process transport reads a stream whole; needs a real socket")

    def short_request() -> float:
        started = time.monotonic()
        client.chat.completions.create(
            model=text_model_id, messages=MESSAGES, max_tokens=2, temperature=0
        )
        return time.monotonic() - started

    baseline = short_request()
    stream = client.chat.completions.create(
        model=text_model_id,
        messages=[{"role": "user", "content": "Tell me a very long story about a dragon."}],
        max_tokens=3000,
        temperature=0,
        stream=True,
    )
    for n, _ in enumerate(stream):
        if n == 3:
            break
    stream.close()
    # One generation at a time: had the story gone on (3000 tokens, half a minute on an
    # idle machine), this request would queue behind it.
    assert short_request() < max(5.0, 10 * baseline)


def test_a_default_server_answers_gpt_4_1_with_the_embedded_model(
    client: openai.OpenAI, text_model_id: str
) -> None:
    if text_model_id != "smollm2-135m-instruct":
        pytest.skip("the default alias's target is the default embedded model")
    response = client.responses.create(model="gpt-4.1", input="Say hi.", max_output_tokens=16)
    assert response.model == text_model_id
    assert response.output_text.strip()


def test_input_tokens_are_the_models_own_count(client: openai.OpenAI, text_model_id: str) -> None:
    counted = client.responses.input_tokens.count(
        model=text_model_id, input="Name one colour.", instructions="Answer in one word."
    )
    response = client.responses.create(
        model=text_model_id, input="Name one colour.", instructions="Answer in one word.",
        max_output_tokens=16, temperature=0,
    )  # fmt: skip
    assert response.usage is not None
    assert (
        counted.input_tokens == response.usage.input_tokens
    )  # llama.cpp's count, template included
