"""Credentials of upstreams stay secret (issue 12, point 5): userinfo in a provider's
base_url is sent as HTTP basic auth and never shown (errors, stored failed responses,
/v1/models, logs); with an api_key as well, the key is sent and calls work; what an
upstream says in an error is cut and scrubbed, even when it quotes our request headers.
Driven through the stock openai client against the fake upstream, in library and server
mode."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import openai
import orjson
import pytest

from convostack.testing.fake_upstream import fake_upstream_server
from convostack.testing.stack import Target, free_port, open_target
from convostack.testing.upstream import Upstream

USER = "svc-user"
PASSWORD = "s3cret-Passw0rd"
API_KEY = "sk-operator-0123456789abcdef"
SECRETS = (PASSWORD, API_KEY, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with fake_upstream_server() as url:
        yield Upstream(url)


@pytest.fixture(autouse=True)
def _fresh_records(upstream: Upstream) -> None:
    upstream.reset()


def _with_userinfo(url: str) -> str:
    return url.replace("http://", f"http://{USER}:{PASSWORD}@", 1)


@pytest.fixture(scope="module")
def target(request: pytest.FixtureRequest, upstream: Upstream) -> Iterator[Target]:
    spec: str = request.config.getoption("--stack-config")
    if spec.startswith(("http://", "https://")):
        pytest.skip("these tests configure their own convostack; a URL target cannot be")
    url = _with_userinfo(upstream.url)
    common = {"type": "openai_compat", "max_retries": 0}
    settings = {
        "inference_mode": "live",
        "providers": [
            {**common, "id": "listed", "base_url": url},  # its models from GET /models
            {**common, "id": "basic", "base_url": url, "models": ["basic-model"]},
            {**common, "id": "both", "base_url": url, "api_key": API_KEY,
             "models": ["both-model"]},
            {**common, "id": "dead", "models": ["dead-model"],
             "base_url": _with_userinfo(f"http://127.0.0.1:{free_port()}/v1")},
        ],
    }  # fmt: skip
    with open_target(spec, request.config.getoption("--db"), settings) as found:
        yield found


@pytest.fixture(scope="module")
def client(target: Target) -> Iterator[openai.OpenAI]:
    with target.http_client() as http:
        yield openai.OpenAI(base_url=target.base_url, api_key="none", http_client=http,
                            max_retries=0)  # fmt: skip


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
    assert f"{USER}:" not in text


def _chat(client: openai.OpenAI, model: str, text: str) -> str:
    completion = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}]
    )
    return str(completion.choices[0].message.content)


def test_userinfo_is_sent_as_basic_auth_and_not_listed(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    models = client.models.list()
    assert {"fake-model", "basic-model", "both-model"} <= {m.id for m in models}
    assert_no_secret(orjson.dumps(models.model_dump()).decode())
    assert _chat(client, "basic-model", "hi") == "echo: hi [1 messages]"
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert upstream.requests()[-1]["authorization"] == f"Basic {token}"


def test_api_key_and_userinfo_together_send_the_key(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    assert _chat(client, "both-model", "hi") == "echo: hi [1 messages]"
    assert upstream.requests()[-1]["authorization"] == f"Bearer {API_KEY}"


def test_an_unreachable_upstream_never_shows_its_credentials(
    client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with pytest.raises(openai.APIStatusError) as chat:
        _chat(client, "dead-model", "hi")
    assert chat.value.status_code == 502
    assert "127.0.0.1" in chat.value.message
    assert_no_secret(chat.value.message)
    with pytest.raises(openai.APIStatusError) as turn:
        client.responses.create(model="dead-model", input="hi")
    assert turn.value.status_code == 502
    assert_no_secret(turn.value.message)
    stored = client.get("/responses?model=dead-model", cast_to=dict)["data"]
    assert {r["status"] for r in stored} == {"failed"}  # one per run on this database
    assert_no_secret(orjson.dumps(stored).decode())
    assert_no_secret(caplog.text)  # in library mode; a spawned server's logs are its own


@pytest.mark.parametrize("model", ["both-model", "basic-model"])
def test_an_upstream_quoting_our_headers_leaks_no_credential(
    client: openai.OpenAI, model: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with pytest.raises(openai.BadRequestError) as chat:
        _chat(client, model, "echo-headers")
    assert "It had:" in chat.value.message  # the upstream's text, scrubbed, not dropped
    assert "[redacted]" in chat.value.message
    assert_no_secret(chat.value.message)
    with pytest.raises(openai.BadRequestError) as turn:
        client.responses.create(model=model, input="echo-headers")
    assert_no_secret(turn.value.message)
    assert_no_secret(caplog.text)


@pytest.mark.parametrize("size", [20_000, 5_000_000])
def test_a_huge_upstream_error_is_cut(client: openai.OpenAI, size: int) -> None:
    # 20k characters: a JSON error, its message cut; 5M: only the start of the body is
    # read at all (not JSON then, so quoted shorter still).
    with pytest.raises(openai.BadRequestError) as chat:
        _chat(client, "basic-model", f"huge-error:{size}")
    assert len(chat.value.message) < 2500
    if size == 20_000:
        assert "cut at 2048 characters" in chat.value.message
