"""Models, Chat Completions and Embeddings through the openai_compat provider, against our
fake upstream (convostack.testing.fake_upstream), driven by the stock openai client.

The convostack under test is configured here rather than by the shared `client` fixture,
because it must point at the fake: `--upstream` for the main provider, plus providers with
a short timeout (`slowup`) and one at a closed port (`deadup`). Model output comes live
from the fake, which is deterministic; there is nothing to record.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
import yaml

from convostack.config import Config
from convostack.providers.openai_compat import OpenAICompatProvider
from convostack.providers.settings import OpenAICompatSettings
from convostack.testing.fake_upstream import fake_embedding, fake_upstream_server
from convostack.testing.stack import Target, free_port, library_target, server_process

SLOW_TIMEOUT = 0.5


@dataclass
class Upstream:
    url: str  # ends in /v1
    closed_url: str  # nothing listens there

    def requests(self, path: str = "/v1/chat/completions") -> list[dict[str, Any]]:
        root = self.url.removesuffix("/v1")
        records: list[dict[str, Any]] = httpx2.get(root + "/fake/requests").json()["data"]
        return [r for r in records if r["path"] == path]

    def reset(self) -> None:
        httpx2.post(self.url.removesuffix("/v1") + "/fake/reset").raise_for_status()


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with fake_upstream_server() as url:
        yield Upstream(url, f"http://127.0.0.1:{free_port()}/v1")


@pytest.fixture(autouse=True)
def _fresh_records(upstream: Upstream) -> None:
    upstream.reset()


def _settings(upstream: Upstream) -> dict[str, Any]:
    return {
        "upstream": upstream.url,
        "providers": [
            {
                "type": "openai_compat",
                "id": "slowup",
                "base_url": upstream.url,
                "api_key": "sk-slow",
                "timeout": SLOW_TIMEOUT,
                "max_retries": 0,
                "models": ["slow-model"],
                "prefix_models": True,
            },
            {
                "type": "openai_compat",
                "id": "deadup",
                "base_url": upstream.closed_url,
                "max_retries": 1,
                "models": ["dead-model"],
            },
        ],
    }


@pytest.fixture(scope="module")
def target(
    request: pytest.FixtureRequest, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    spec: str = request.config.getoption("--stack-config")
    if spec.startswith(("http://", "https://")):
        pytest.skip("these tests configure their own convostack; a URL target cannot be")
    home: Path = tmp_path_factory.mktemp("upstream")
    settings = {**_settings(upstream), "db": f"sqlite:///{home / 'test.db'}"}
    if spec == "library":
        with library_target(Config.model_validate({**settings, "home": home})) as found:
            yield found
        return
    config_file = home / "config.yaml"
    config_file.write_text(yaml.safe_dump(settings))
    port = free_port()
    # The environment outranks the config file, so anything a developer has exported
    # is pinned here: this fake as the upstream, no key, and live calls (the fake is
    # the model; there is nothing to replay). An empty value counts as unset.
    env = {
        "CONVOSTACK_UPSTREAM": upstream.url,
        "CONVOSTACK_UPSTREAM_API_KEY": "",
        "CONVOSTACK_INFERENCE_MODE": "live",
    }
    with server_process(port, home, ("--config", str(config_file)), env):
        yield Target("server", f"http://127.0.0.1:{port}/v1")


@pytest.fixture(scope="module")
def http(target: Target) -> Iterator[httpx2.Client]:
    with target.http_client() as client:
        yield client


@pytest.fixture(scope="module")
def client(target: Target, http: httpx2.Client) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=target.base_url, api_key="test-key", http_client=http, max_retries=0
    )


def _name(upstream_id: str, url: str) -> str:
    return f"Upstream '{upstream_id}' ({url})"


# --- models ----------------------------------------------------------------------------


def test_models_list_shows_the_upstreams_models(client: openai.OpenAI) -> None:
    models = {m.id: m for m in client.models.list()}
    assert set(models) == {"fake-model", "slow-model", "slowup/slow-model", "dead-model"}
    fake = models["fake-model"]
    assert (fake.object, fake.owned_by, fake.created) == ("model", "fake", 1_700_000_000)
    assert models["slowup/slow-model"].owned_by == "slowup"


def test_models_retrieve_accepts_ids_with_a_slash(client: openai.OpenAI) -> None:
    model = client.models.retrieve("slowup/slow-model")
    assert (model.id, model.object, model.owned_by) == ("slowup/slow-model", "model", "slowup")


def test_models_retrieve_unknown_is_model_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("no-such/model")
    assert caught.value.code == "model_not_found"
    assert "The model 'no-such/model' does not exist" in caught.value.message
    assert "GET /v1/models" in caught.value.message


def test_chat_with_an_unknown_model_is_model_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"


# --- chat completions ------------------------------------------------------------------

HISTORY: list[Any] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "first question"},
    {"role": "assistant", "content": "first answer"},
    {"role": "user", "content": [{"type": "text", "text": "second question"}]},
]


def test_chat_sends_the_whole_history_and_extra_keys_upstream(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    completion = client.chat.completions.create(
        model="fake-model",
        messages=HISTORY,
        temperature=0.25,
        extra_body={"top_k": 5},
    )
    assert completion.object == "chat.completion"
    assert completion.model == "fake-model"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "echo: second question [4 messages]"
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (8, 5)

    (sent,) = upstream.requests()
    assert sent["body"] == {
        "model": "fake-model",
        "messages": HISTORY,
        "temperature": 0.25,
        "top_k": 5,
    }
    assert sent["authorization"] is None  # no api_key configured for this provider


def test_public_id_comes_back_and_the_providers_own_id_goes_upstream(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    completion = client.chat.completions.create(
        model="slowup/slow-model", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.model == "slowup/slow-model"
    assert completion.choices[0].message.content == "echo: hi [1 messages]"
    (sent,) = upstream.requests()
    assert sent["body"]["model"] == "slow-model"
    assert sent["authorization"] == "Bearer sk-slow"


def test_chat_stream_yields_deltas_and_ends(client: openai.OpenAI, upstream: Upstream) -> None:
    stream = client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = list(stream)  # ends only if the stream was properly terminated
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len(chunks) > 3
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hi [1 messages]"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert {c.model for c in chunks} == {"fake-model"}
    # Usage is always asked of the provider, but reaches only clients that ask for it.
    assert all(c.usage is None for c in chunks)
    (sent,) = upstream.requests()
    assert sent["body"]["stream"] is True
    assert sent["body"]["stream_options"] == {"include_usage": True}


def test_chat_stream_with_include_usage_ends_with_a_usage_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="fake-model",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (1, 4)
    assert last.usage.total_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_stream_is_sse_terminated_by_done(http: httpx2.Client) -> None:
    response = http.post(
        "/v1/chat/completions",
        json={
            "model": "fake-model",
            "messages": [{"role": "user", "content": "x"}],
            "stream": True,
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = response.text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    assert all(e.startswith("data: {") for e in events[:-2])


TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    },
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
]


def test_tool_calls_pass_through(client: openai.OpenAI, upstream: Upstream) -> None:
    completion = client.chat.completions.create(
        model="fake-model",
        messages=[{"role": "user", "content": "weather in Paris"}],
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    assert call.function.name == "get_time"
    assert json.loads(call.function.arguments) == {"text": "weather in Paris"}
    (sent,) = upstream.requests()
    assert sent["body"]["tools"] == TOOLS


def test_streamed_tool_call_fragments_pass_through(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="fake-model",
        messages=[{"role": "user", "content": "call get_weather for Paris"}],
        tools=TOOLS,
        stream=True,
    )
    names: list[str] = []
    arguments = ""
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for fragment in choice.delta.tool_calls or []:
                assert fragment.index == 0
                if fragment.function and fragment.function.name:
                    names.append(fragment.function.name)
                if fragment.function and fragment.function.arguments:
                    arguments += fragment.function.arguments
            finish = choice.finish_reason or finish
    assert names == ["get_weather"]
    assert json.loads(arguments) == {"text": "call get_weather for Paris"}
    assert finish == "tool_calls"


@pytest.mark.parametrize(
    ("messages", "code", "param"),
    [
        ([], "array_below_min_length", "messages"),
        (["not an object"], "invalid_type", "messages[0]"),
    ],
)
def test_bad_messages_are_refused_before_going_upstream(
    client: openai.OpenAI, upstream: Upstream, messages: list[Any], code: str, param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake-model", messages=messages)
    assert (caught.value.code, caught.value.param) == (code, param)
    assert upstream.requests() == []


def test_missing_model_is_refused(http: httpx2.Client) -> None:
    response = http.post("/v1/chat/completions", json={"messages": [{"role": "user"}]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("missing_required_parameter", "model")


# --- embeddings ------------------------------------------------------------------------


def test_embeddings_default_base64_decodes_to_the_upstreams_floats(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    # The openai client asks for base64 unless told otherwise.
    result = client.embeddings.create(model="fake-model", input=["alpha", "beta"])
    assert result.model == "fake-model"
    assert [e.index for e in result.data] == [0, 1]
    assert [e.embedding for e in result.data] == [fake_embedding("alpha"), fake_embedding("beta")]
    (sent,) = upstream.requests("/v1/embeddings")
    assert sent["body"]["encoding_format"] == "float"


def test_embeddings_as_floats(client: openai.OpenAI) -> None:
    result = client.embeddings.create(
        model="fake-model", input="gamma", encoding_format="float", dimensions=16
    )
    assert [e.embedding for e in result.data] == [fake_embedding("gamma", 16)]
    assert result.usage.prompt_tokens == 1


# --- upstream failures -----------------------------------------------------------------


def test_upstream_500_is_a_502_naming_the_upstream_after_retries(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "fail500"}]
        )
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_error"
    assert caught.value.message.endswith(
        f"{_name('upstream', upstream.url)} failed with HTTP 500: Fake upstream failure (fail500)."
    )
    assert len(upstream.requests()) == 3  # the first try and max_retries (2) retries
    # ...and the openai client is told not to multiply them with its own retries.
    assert caught.value.response.headers["x-should-retry"] == "false"


def test_upstream_500_on_a_stream_is_an_http_error_before_any_event(
    client: openai.OpenAI,
) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "fail500"}], stream=True
        )
    assert caught.value.status_code == 502


def test_upstream_400_is_a_bad_request_with_the_upstreams_message(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "fail400"}]
        )
    assert caught.value.message.endswith(
        f"{_name('upstream', upstream.url)} rejected the request: "
        "Fake upstream rejected the request (fail400)."
    )
    assert caught.value.code == "invalid_value"
    assert len(upstream.requests()) == 1  # a 4xx is not retried


def test_upstream_slower_than_its_timeout_is_504(client: openai.OpenAI, upstream: Upstream) -> None:
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model="slow-model", messages=[{"role": "user", "content": "slow:3"}]
        )
    assert time.monotonic() - started < 2.5
    assert caught.value.status_code == 504
    assert caught.value.code == "upstream_timeout"
    assert caught.value.message.endswith(
        f"{_name('slowup', upstream.url)} did not answer within {SLOW_TIMEOUT:g} seconds."
    )


def test_stream_from_an_upstream_slower_than_its_timeout_is_504(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model="slow-model", messages=[{"role": "user", "content": "slow:3"}], stream=True
        )
    assert caught.value.status_code == 504
    assert caught.value.code == "upstream_timeout"


def test_stream_slower_than_the_timeout_in_total_but_not_per_chunk_completes(
    client: openai.OpenAI,
) -> None:
    # Six chunks 0.2 s apart last longer than the 0.5 s timeout: a healthy stream.
    stream = client.chat.completions.create(
        model="slow-model", messages=[{"role": "user", "content": "drip:0.2"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "echo: drip:0.2 [1 messages]"


def test_unreachable_upstream_is_a_502_that_says_so(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model="dead-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_unavailable"
    assert caught.value.message.startswith(
        f"Error code: 502 - {_name('deadup', upstream.closed_url)} is unreachable ("
    )
    assert "Check that it is running and that base_url is right." in caught.value.message


def test_stream_broken_midway_raises_after_the_first_deltas(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    stream = client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "break"}], stream=True
    )
    received: list[str] = []

    def read_all() -> None:
        for chunk in stream:
            received.extend(c.delta.content or "" for c in chunk.choices)

    with pytest.raises(openai.APIError) as caught:
        read_all()
    assert "".join(received) == "echo: break "  # the role chunk and two deltas
    assert caught.value.message.startswith(
        f"{_name('upstream', upstream.url)} broke off the stream before it finished"
    )
    assert caught.value.code == "upstream_stream_broken"


def test_error_chunk_from_upstream_raises_with_its_message(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    stream = client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "error-chunk"}], stream=True
    )
    with pytest.raises(openai.APIError) as caught:
        list(stream)
    assert caught.value.message == (
        f"{_name('upstream', upstream.url)} reported an error: "
        "Fake upstream error in the stream (error-chunk)."
    )


# --- cancellation ----------------------------------------------------------------------


def _wait_for_outcome(upstream: Upstream, outcome: str) -> list[str]:
    deadline = time.monotonic() + 5
    while True:
        outcomes = [r["outcome"] for r in upstream.requests()]
        if outcome in outcomes or time.monotonic() > deadline:
            return outcomes
        time.sleep(0.05)


def test_client_disconnect_cancels_the_upstream_stream(target: Target, upstream: Upstream) -> None:
    if target.mode != "server":
        pytest.skip("the in-process transport reads whole responses; a client cannot leave")
    body = {
        "model": "fake-model",
        "messages": [{"role": "user", "content": "drip:0.3"}],
        "stream": True,
    }
    with target.http_client() as http, http.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        next(r.iter_raw())
    assert _wait_for_outcome(upstream, "aborted") == ["aborted"]


async def test_closing_the_provider_stream_early_aborts_the_upstream(upstream: Upstream) -> None:
    provider = OpenAICompatProvider(OpenAICompatSettings(base_url=upstream.url))
    await provider.start()
    try:
        chunks = provider.chat_stream(
            {"model": "fake-model", "messages": [{"role": "user", "content": "drip:0.3"}]}
        )
        first = await anext(chunks)
        assert first["choices"][0]["delta"]["role"] == "assistant"
        await chunks.aclose()
        # Checked while the provider (and its pool) is still open: the stream's own
        # connection must be dropped, not parked in the pool with the upstream still going.
        outcomes = await asyncio.to_thread(_wait_for_outcome, upstream, "aborted")
        assert outcomes == ["aborted"]
    finally:
        await provider.close()
