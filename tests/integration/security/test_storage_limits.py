"""Issue 12's storage and per-request work limits, through the API: concurrent turns and
the item limit, the size of one request's input, and the quotas per principal."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from convostack.testing.postgres import schema_for_test
from convostack.testing.stack import Target, open_target
from convostack.testing.upstream import FAKE_MODEL, Upstream

from .conftest import KEYS, LIMITS, auth

# Every wait of these tests is bounded by this.
DEADLINE_SECONDS = 60.0


def _items(client: openai.OpenAI, conversation_id: str) -> list[Any]:
    return [
        i.model_dump()
        for i in client.conversations.items.list(conversation_id, limit=100, order="asc")
    ]


async def _concurrent_turns(target: Target, conversation: str, count: int) -> list[str]:
    """`count` turns on the conversation at once: "ok" or the error code of each."""
    async with target.async_http_client() as http:
        client = openai.AsyncOpenAI(
            base_url=target.base_url, api_key=KEYS.a, http_client=http, max_retries=0
        )

        async def turn(n: int) -> str:
            try:
                await client.responses.create(
                    model=FAKE_MODEL, conversation=conversation, input=f"turn {n}"
                )
            except openai.BadRequestError as exc:
                return str(exc.code)
            return "ok"

        return await asyncio.wait_for(
            asyncio.gather(*(turn(n) for n in range(count))), DEADLINE_SECONDS
        )


def test_concurrent_turns_never_pass_the_item_limit(
    stack_target: Target, client: openai.OpenAI
) -> None:
    # Each turn checks the limit when it starts (all pass: 20 + 2 <= 30) and appends two
    # items (its input and the answer) when it ends: only five fit.
    limit = LIMITS.max_items_per_conversation
    conversation = client.conversations.create(
        items=[{"role": "user", "content": f"m{n}"} for n in range(20)]
    ).id
    outcomes = asyncio.run(_concurrent_turns(stack_target, conversation, 16))
    assert sorted(set(outcomes)) == ["conversation_too_long", "ok"], outcomes
    assert outcomes.count("ok") == (limit - 20) // 2
    items = _items(client, conversation)
    assert len(items) == limit
    texts = [i["content"][0]["text"] for i in items if i["role"] == "user"]
    kept = [n for n in range(16) if f"turn {n}" in texts]
    assert [outcomes[n] for n in kept] == ["ok"] * len(kept) == ["ok"] * 5


def _error(response: httpx2.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    return error


def test_input_items_per_request(
    http: httpx2.Client, client: openai.OpenAI, upstream: Upstream, headers_a: dict[str, str]
) -> None:
    limit = LIMITS.max_input_items
    many = [{"role": "user", "content": f"m{n}"} for n in range(limit + 1)]
    body = {"model": FAKE_MODEL, "input": many}
    error = _error(http.post("/v1/responses", json=body, headers=headers_a))
    assert (error["code"], error["param"]) == ("array_above_max_length", "input")
    assert f"maximum length {limit} (setting max_input_items)" in error["message"]
    assert upstream.chat_requests() == []
    fits = client.responses.create(model=FAKE_MODEL, input=many[:limit])  # type: ignore[arg-type]
    assert fits.status == "completed"


def _image(size: int) -> dict[str, Any]:
    url = "data:image/png;base64,"
    url += "A" * (size - len(url))
    return {"role": "user", "content": [{"type": "input_image", "image_url": url}]}


def _file(size: int) -> dict[str, Any]:
    part = {"type": "input_file", "filename": "a.pdf", "file_data": "A" * size}
    return {"role": "user", "content": [{"type": "input_text", "text": "read"}, part]}


def test_image_and_file_data_per_item(
    http: httpx2.Client, client: openai.OpenAI, upstream: Upstream, headers_a: dict[str, str]
) -> None:
    limit = LIMITS.max_item_data_bytes
    conversation = client.conversations.create().id
    path = f"/v1/conversations/{conversation}/items"
    for item in (_image(limit + 1), _file(limit + 1)):
        error = _error(http.post(path, json={"items": [item]}, headers=headers_a))
        assert (error["code"], error["param"]) == ("string_above_max_length", "items[0]")
        assert f"limit of {limit} per item (setting max_item_data_bytes)" in error["message"]
        turn = {"model": FAKE_MODEL, "input": [{"role": "user", "content": "hi"}, item]}
        error = _error(http.post("/v1/responses", json=turn, headers=headers_a))
        assert (error["code"], error["param"]) == ("string_above_max_length", "input[1]")
    assert upstream.chat_requests() == []
    assert _items(client, conversation) == []
    fits = {"items": [_image(limit), _file(limit // 2)]}
    assert http.post(path, json=fits, headers=headers_a).status_code == 200
    assert len(_items(client, conversation)) == 2


def test_item_references_copy_a_bounded_size(
    http: httpx2.Client, client: openai.OpenAI, upstream: Upstream, headers_a: dict[str, str]
) -> None:
    # A short request of references to one big stored item asked for copies of it all
    # (500 references to a 20 MB item froze the server for 15 s): now the item is read
    # once and its copies counted against max_reference_bytes.
    text = "x" * (LIMITS.max_reference_bytes // 3 + 1000)
    stored = client.conversations.create(items=[{"role": "user", "content": text}])
    item_id = _items(client, stored.id)[0]["id"]
    conversation = client.conversations.create().id
    references = [{"type": "item_reference", "id": item_id}] * 3
    body = {"model": FAKE_MODEL, "conversation": conversation, "input": references}
    error = _error(http.post("/v1/responses", json=body, headers=headers_a))
    assert (error["code"], error["param"]) == ("input_too_large", "input")
    assert "(setting max_reference_bytes)" in error["message"]
    assert upstream.chat_requests() == []
    body["input"] = references[:2]
    response = http.post("/v1/responses", json=body, headers=headers_a)
    assert response.status_code == 200, response.text
    copies = _items(client, conversation)[:2]
    assert [c["content"][0]["text"] for c in copies] == [text, text]
    assert len({c["id"] for c in copies} | {item_id}) == 3


# --- quotas per principal and the weighed rate limit ------------------------------------

QUOTA_CONVERSATIONS = 2
QUOTA_ITEMS = 6
BYTES_PER_TOKEN = 4096


@pytest.fixture(scope="module")
def quota_target(
    request: pytest.FixtureRequest, settings: dict[str, object], database_url: str
) -> Iterator[Target]:
    """A convostack of its own, on a fresh database of the backend under test: quotas
    per principal, and a rate limit (600 a minute, bursts of 20) weighed by size."""
    quota_settings = {
        **settings,
        "max_conversations_per_principal": QUOTA_CONVERSATIONS,
        "max_items_per_principal": QUOTA_ITEMS,
        "max_stored_bytes_per_principal": 200_000,
        "rate_limit_per_minute": 600,
        "rate_limit_burst": 20,
        "rate_limit_bytes_per_token": BYTES_PER_TOKEN,
    }
    spec: str = request.config.getoption("--stack-config")
    with contextlib.ExitStack() as stack:
        db: str | None = None
        if database_url.startswith("postgres"):
            db = stack.enter_context(schema_for_test(request.config))
        yield stack.enter_context(open_target(spec, db, quota_settings))


def _quota_error(response: httpx2.Response, setting: str) -> None:
    error = _error(response)
    assert error["code"] == "quota_exceeded"
    assert f"(setting {setting})" in error["message"]


def test_quotas_per_principal(quota_target: Target) -> None:
    b, a = auth(KEYS.b), auth(KEYS.a)
    with quota_target.http_client() as http:
        items = {"items": [{"role": "user", "content": f"m{n}"} for n in range(3)]}
        first = http.post("/v1/conversations", json=items, headers=b).json()["id"]
        second = http.post("/v1/conversations", json={}, headers=b).json()["id"]
        _quota_error(
            http.post("/v1/conversations", json={}, headers=b), "max_conversations_per_principal"
        )
        assert http.post("/v1/conversations", json={}, headers=a).status_code == 200  # own quota
        # Items: 3 held, 2 more fit; a turn (input and answer) then does not.
        two = {"items": items["items"][:2]}
        assert http.post(f"/v1/conversations/{second}/items", json=two, headers=b).is_success
        turn = {"model": FAKE_MODEL, "conversation": second, "input": "one more"}
        _quota_error(http.post("/v1/responses", json=turn, headers=b), "max_items_per_principal")
        listed = http.get(f"/v1/conversations/{second}/items", headers=b).json()["data"]
        assert len(listed) == 2
        # Deleting a conversation frees its items and its place.
        assert http.delete(f"/v1/conversations/{first}", headers=b).is_success
        assert http.post("/v1/responses", json=turn, headers=b).is_success
        assert http.post("/v1/conversations", json={}, headers=b).is_success


def test_rate_limit_weighed_by_body_size(quota_target: Target) -> None:
    a = auth(KEYS.a2)
    with quota_target.http_client() as http:
        for _ in range(3):
            assert http.get("/v1/models", headers=a).status_code == 200
        # 80 KiB costs 21 tokens: more than the 17 left (it needs a full bucket).
        big = {"items": [{"role": "user", "content": "x" * (80 * 1024)}]}
        refused = http.post("/v1/conversations", json=big, headers=a)
        assert refused.status_code == 429, refused.text
        error = refused.json()["error"]
        assert error["code"] == "rate_limit_exceeded"
        assert "(setting rate_limit_bytes_per_token)" in error["message"]
        assert 0 < float(refused.headers["retry-after-ms"]) <= 1000
