"""Configurable limits, each a clear 400 (413 for the body) that names the setting, and
none of which leaves anything behind; the optional per-principal rate limit (429)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import openai
import pytest

from convostack.testing.stack import Target, open_target
from convostack.testing.upstream import FAKE_MODEL, Upstream

KEY_A = "sk-sec-team-a-0123456789abcdef"  # as configured in conftest.py
KEY_A2 = "sk-sec-team-a-second-fedcba9876"
KEY_B = "sk-sec-team-b-0123456789abcdef"
MAX_BODY_BYTES = 256 * 1024
MAX_ITEM_TEXT_CHARS = 100_000
MAX_ITEMS_PER_CONVERSATION = 30
MAX_TOOLS = 4
MAX_OUTPUT_TOKENS = 1000


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _items(client: openai.OpenAI, conversation_id: str) -> list[Any]:
    return [i.model_dump() for i in client.conversations.items.list(conversation_id, limit=100)]


def _error(response: httpx2.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    return error


@pytest.fixture
def conversation(client: openai.OpenAI) -> str:
    return client.conversations.create(items=[{"role": "user", "content": "first"}]).id


def test_body_size(http: httpx2.Client, client: openai.OpenAI, conversation: str) -> None:
    before = _items(client, conversation)
    text = "x" * MAX_BODY_BYTES
    sized = http.post(
        f"/v1/conversations/{conversation}/items",
        json={"items": [{"role": "user", "content": text}]},
        headers=auth(KEY_A),
    )
    assert _error(sized, 413)["code"] == "request_too_large"

    def chunks() -> Iterator[bytes]:  # no content-length: counted as it arrives
        yield b'{"items": [{"role": "user", "content": "'
        for _ in range(MAX_BODY_BYTES // 1024 + 1):
            yield b"y" * 1024
        yield b'"}]}'

    streamed = http.post(
        f"/v1/conversations/{conversation}/items", content=chunks(), headers=auth(KEY_A)
    )
    assert f"{MAX_BODY_BYTES} bytes" in _error(streamed, 413)["message"]
    assert _items(client, conversation) == before


def test_text_per_item(http: httpx2.Client, client: openai.OpenAI, conversation: str) -> None:
    limit = MAX_ITEM_TEXT_CHARS
    path = f"/v1/conversations/{conversation}/items"
    fits = [{"role": "user", "content": "é" * limit}]  # characters, not bytes
    assert http.post(path, json={"items": fits}, headers=auth(KEY_A)).status_code == 200
    before = _items(client, conversation)
    too_long: list[Any] = [
        {"role": "user", "content": "ok"},
        {"role": "user", "content": [{"type": "input_text", "text": "a" * (limit // 2)},
                                     {"type": "input_text", "text": "b" * (limit // 2 + 1)}]},
    ]  # fmt: skip
    error = _error(http.post(path, json={"items": too_long}, headers=auth(KEY_A)))
    assert (error["code"], error["param"]) == ("string_above_max_length", "items[1]")
    assert "max_item_text_chars" in error["message"]
    output = [{"type": "function_call_output", "call_id": "call_1", "output": "z" * (limit + 1)}]
    assert _error(http.post(path, json={"items": output}, headers=auth(KEY_A)))["param"] == (
        "items[0]"
    )
    # A base64 image is a binary payload, bounded by the body size alone.
    url = "data:image/png;base64," + "A" * (limit + 10)
    image = [{"role": "user", "content": [{"type": "input_image", "image_url": url}]}]
    assert http.post(path, json={"items": image}, headers=auth(KEY_A)).status_code == 200
    assert _items(client, conversation)[1:] == before


def test_text_per_item_in_a_turn(
    http: httpx2.Client, client: openai.OpenAI, upstream: Upstream, conversation: str
) -> None:
    before = _items(client, conversation)
    long = "w" * (MAX_ITEM_TEXT_CHARS + 1)
    for body, param in (
        ({"input": long}, "input[0]"),
        ({"input": [{"role": "user", "content": "hi"}, {"role": "user", "content": long}]},
         "input[1]"),
        ({"input": "hi", "instructions": long}, "instructions"),
    ):  # fmt: skip
        sent = {"model": FAKE_MODEL, "conversation": conversation, **body}
        for stream in (False, True):
            response = http.post("/v1/responses", json={**sent, "stream": stream},
                                 headers=auth(KEY_A))  # fmt: skip
            error = _error(response)
            assert (error["code"], error["param"]) == ("string_above_max_length", param)
    assert upstream.chat_requests() == []
    assert _items(client, conversation) == before


def test_items_per_conversation(
    http: httpx2.Client, client: openai.OpenAI, upstream: Upstream
) -> None:
    limit = MAX_ITEMS_PER_CONVERSATION
    conversation = client.conversations.create(
        items=[{"role": "user", "content": f"m{n}"} for n in range(20)]
    ).id
    client.conversations.items.create(
        conversation, items=[{"role": "user", "content": f"m{n}"} for n in range(20, limit - 2)]
    )
    # A turn appends its input and at least one output item: two fit, three do not.
    two = [{"role": "user", "content": "p"}, {"role": "user", "content": "q"}]
    response = http.post(
        "/v1/responses",
        json={"model": FAKE_MODEL, "conversation": conversation, "input": two},
        headers=auth(KEY_A),
    )
    error = _error(response)
    assert (error["code"], error["param"]) == ("conversation_too_long", "conversation")
    assert f"limit of {limit} items per conversation" in error["message"]
    assert "max_items_per_conversation" in error["message"]
    assert upstream.chat_requests() == []
    client.responses.create(model=FAKE_MODEL, conversation=conversation, input="last turn")
    assert len(_items(client, conversation)) == limit

    full = _items(client, conversation)
    more = {"items": [{"role": "user", "content": "one too many"}]}
    error = _error(http.post(f"/v1/conversations/{conversation}/items", json=more,
                             headers=auth(KEY_A)))  # fmt: skip
    assert (error["code"], error["param"]) == ("conversation_too_long", "items")
    assert f"holds {limit} items" in error["message"]
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model=FAKE_MODEL, conversation=conversation, input="x")
    assert _items(client, conversation) == full
    # Deleting an item makes room again.
    client.conversations.items.delete(full[0]["id"], conversation_id=conversation)
    client.conversations.items.create(conversation, items=[{"role": "user", "content": "fits"}])
    assert len(_items(client, conversation)) == limit


def test_concurrent_appends_never_pass_the_item_limit(client: openai.OpenAI) -> None:
    conversation = client.conversations.create(
        items=[{"role": "user", "content": f"m{n}"} for n in range(20)]
    ).id
    more = range(20, MAX_ITEMS_PER_CONVERSATION - 5)
    client.conversations.items.create(
        conversation, items=[{"role": "user", "content": f"m{n}"} for n in more]
    )

    def append(n: int) -> str:
        try:
            client.conversations.items.create(
                conversation, items=[{"role": "user", "content": f"c{n}"}]
            )
        except openai.BadRequestError as exc:
            return str(exc.code)
        return "ok"

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(append, range(24)))
    assert sorted(set(outcomes)) == ["conversation_too_long", "ok"]
    assert outcomes.count("ok") == 5
    assert len(_items(client, conversation)) == MAX_ITEMS_PER_CONVERSATION


def _tool(n: int) -> dict[str, Any]:
    return {"type": "function", "name": f"tool_{n}", "parameters": {"type": "object"}}


def test_tool_count(http: httpx2.Client, client: openai.OpenAI) -> None:
    tools = [_tool(n) for n in range(MAX_TOOLS + 1)]
    body = {"model": FAKE_MODEL, "input": "hi", "tools": tools}
    error = _error(http.post("/v1/responses", json=body, headers=auth(KEY_A)))
    assert (error["code"], error["param"]) == ("array_above_max_length", "tools")
    assert "max_tools" in error["message"]
    fits = client.responses.create(model=FAKE_MODEL, input="hi", tools=tools[:-1])  # type: ignore[arg-type]
    assert fits.status == "completed"


@pytest.mark.parametrize(
    ("value", "code"),
    [(MAX_OUTPUT_TOKENS + 1, "integer_above_max_value"), (10**6, "integer_above_max_value"),
     (10**30, "integer_out_of_range"), (15, "invalid_value"), (-1, "invalid_value"),
     (1.5, "invalid_type"), ("many", "invalid_type")],
)  # fmt: skip
def test_max_output_tokens_range(http: httpx2.Client, value: Any, code: str) -> None:
    body = {"model": FAKE_MODEL, "input": "hi", "max_output_tokens": value}
    error = _error(http.post("/v1/responses", json=body, headers=auth(KEY_A)))
    assert (error["code"], error["param"]) == (code, "max_output_tokens")


def test_max_output_tokens_at_the_limit(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=FAKE_MODEL, input="hi", max_output_tokens=MAX_OUTPUT_TOKENS
    )
    assert response.max_output_tokens == MAX_OUTPUT_TOKENS


# --- the rate limit -------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(request: pytest.FixtureRequest, settings: dict[str, object]) -> Iterator[Target]:
    """A convostack of its own: 60 requests a minute per principal, bursts of 3."""
    limited = {**settings, "rate_limit_per_minute": 60, "rate_limit_burst": 3}
    with open_target(request.config.getoption("--stack-config"), None, limited) as target:
        yield target


def test_rate_limit_per_principal(limited: Target) -> None:
    with limited.http_client() as http:
        for _ in range(3):
            assert http.get("/v1/models", headers=auth(KEY_A)).status_code == 200
        refused = http.get("/v1/models", headers=auth(KEY_A2))  # the same principal
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert error["code"] == "rate_limit_exceeded"
        assert "'team-a': 60 requests per minute" in error["message"]
        assert refused.headers["retry-after"] == "1"
        assert 0 < int(refused.headers["retry-after-ms"]) <= 1000
        # Another principal has its own bucket; health is never limited.
        assert http.get("/v1/models", headers=auth(KEY_B)).status_code == 200
        assert http.get("/v1/health").status_code == 200

        client = openai.OpenAI(base_url=limited.base_url, api_key=KEY_A, http_client=http,
                               max_retries=0)  # fmt: skip
        with pytest.raises(openai.RateLimitError):
            client.models.list()
        # The openai client waits as long as retry-after-ms says, then gets through.
        patient = client.with_options(max_retries=3)
        started = time.monotonic()
        assert patient.models.list().data
        assert time.monotonic() - started < 5
