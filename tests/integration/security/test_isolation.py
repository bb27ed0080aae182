"""Tenant isolation: team-b gets exactly the answer an unknown id gets (404, never 403) on
every route that names team-a's conversation, item or response, and team-a's data is the
same after each try. Keys are required on every /v1 route but health."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
import pytest

from convostack.testing.upstream import FAKE_MODEL, Upstream


@dataclass(frozen=True)
class Owned:
    """team-a's objects: a conversation with a turn on it, and a chained response."""

    conversation_id: str
    item_id: str
    response_id: str
    chained_response_id: str


def _all_items(client: openai.OpenAI, conversation_id: str) -> list[Any]:
    return [i.model_dump() for i in client.conversations.items.list(conversation_id, limit=2)]


def snapshot(client: openai.OpenAI, owned: Owned) -> dict[str, Any]:
    return {
        "conversation": client.conversations.retrieve(owned.conversation_id).model_dump(),
        "items": _all_items(client, owned.conversation_id),
        "responses": [
            (
                client.responses.retrieve(rid).model_dump(),
                [i.model_dump() for i in client.responses.input_items.list(rid)],
            )
            for rid in (owned.response_id, owned.chained_response_id)
        ],
        "listed": [r["id"] for r in client.get("/responses", cast_to=dict)["data"]],
        "conversations": client.get("/conversations?limit=100", cast_to=dict)["data"],
    }


@pytest.fixture(scope="module")
def owned(client: openai.OpenAI) -> Owned:
    conversation = client.conversations.create(
        metadata={"owner": "team-a"}, items=[{"role": "user", "content": "a secret of team-a"}]
    )
    item_id = client.conversations.items.list(conversation.id).data[0].id
    assert item_id is not None
    turn = client.responses.create(model=FAKE_MODEL, input="hello", conversation=conversation.id)
    first = client.responses.create(model=FAKE_MODEL, input="standalone")
    chained = client.responses.create(
        model=FAKE_MODEL, input="and then", previous_response_id=first.id
    )
    return Owned(conversation.id, item_id, turn.id, chained.id)


@pytest.fixture
def unchanged(client: openai.OpenAI, owned: Owned, upstream: Upstream) -> Iterator[None]:
    """Team-a's data, and the model's calls, are the same after the test as before it."""
    before = snapshot(client, owned)
    calls = len(upstream.requests())
    yield
    assert len(upstream.requests()) == calls, "a denied request reached the model"
    assert snapshot(client, owned) == before


def _unknown(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


# (name, method, path, body): {c} is the conversation, {i} the item, {r} the response.
DENIED = [
    ("retrieve conversation", "GET", "/v1/conversations/{c}", None),
    ("update conversation", "POST", "/v1/conversations/{c}", {"metadata": {"owner": "b"}}),
    ("delete conversation", "DELETE", "/v1/conversations/{c}", None),
    ("list items", "GET", "/v1/conversations/{c}/items?order=asc&limit=5", None),
    ("create items", "POST", "/v1/conversations/{c}/items",
     {"items": [{"role": "user", "content": "injected by b"}]}),
    ("retrieve item", "GET", "/v1/conversations/{c}/items/{i}", None),
    ("delete item", "DELETE", "/v1/conversations/{c}/items/{i}", None),
    ("turn on the conversation", "POST", "/v1/responses",
     {"model": FAKE_MODEL, "input": "what did they say?", "conversation": "{c}"}),
    ("streamed turn on the conversation", "POST", "/v1/responses",
     {"model": FAKE_MODEL, "input": "x", "conversation": {"id": "{c}"}, "stream": True}),
    ("turn after the response", "POST", "/v1/responses",
     {"model": FAKE_MODEL, "input": "go on", "previous_response_id": "{r}"}),
    ("streamed turn after the response", "POST", "/v1/responses",
     {"model": FAKE_MODEL, "input": "go on", "previous_response_id": "{r}", "stream": True}),
    ("retrieve response", "GET", "/v1/responses/{r}", None),
    ("replay response", "GET", "/v1/responses/{r}?stream=true", None),
    ("delete response", "DELETE", "/v1/responses/{r}", None),
    ("list input items", "GET", "/v1/responses/{r}/input_items", None),
    ("cancel response", "POST", "/v1/responses/{r}/cancel", None),
    ("page responses after it", "GET", "/v1/responses?after={r}", None),
    ("page conversations after it", "GET", "/v1/conversations?after={c}", None),
]  # fmt: skip


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, real in ids.items():
            value = value.replace("{" + name + "}", real)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _mask(body: Any, ids: dict[str, str]) -> str:
    text = str(body)
    for name, real in ids.items():
        text = text.replace(real, "{" + name + "}")
    return text


def _send(http: httpx2.Client, method: str, path: str, body: Any, key: dict[str, str]) -> Any:
    response = http.request(method, path, json=body, headers=key)
    assert response.headers["content-type"] == "application/json"
    return response.status_code, response.json()


@pytest.mark.parametrize(("name", "method", "path", "body"), DENIED, ids=[d[0] for d in DENIED])
@pytest.mark.usefixtures("unchanged")
def test_another_principal_gets_what_an_unknown_id_gets(
    http: httpx2.Client,
    owned: Owned,
    headers_b: dict[str, str],
    name: str,
    method: str,
    path: str,
    body: Any,
) -> None:
    real = {"c": owned.conversation_id, "i": owned.item_id, "r": owned.response_id}
    fake = {"c": _unknown("conv"), "i": _unknown("msg"), "r": _unknown("resp")}
    status, denied = _send(http, method, _fill(path, real), _fill(body, real), headers_b)
    unknown_status, unknown = _send(http, method, _fill(path, fake), _fill(body, fake), headers_b)
    assert status != 403
    assert status in (404, 400)
    assert (status, _mask(denied, real)) == (unknown_status, _mask(unknown, fake)), (
        "the answer for another principal's id differs from the answer for an unknown id"
    )
    if "previous_response_id" in (body or {}):
        # OpenAI's answer to an unknown previous response is a 400, so it is here too.
        assert denied["error"]["code"] == "previous_response_not_found"
    elif "after=" not in path:
        assert status == 404
    assert set(denied["error"]) == {"message", "type", "param", "code"}


@pytest.mark.usefixtures("unchanged")
def test_item_references_and_cursors_do_not_reach_across(
    client_b: openai.OpenAI, http: httpx2.Client, owned: Owned, headers_b: dict[str, str]
) -> None:
    mine = client_b.conversations.create(items=[{"role": "user", "content": "b's own"}])
    before = _all_items(client_b, mine.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client_b.conversations.items.create(
            mine.id, items=[{"type": "item_reference", "id": owned.item_id}]
        )
    assert caught.value.message.endswith(f"Item with id '{owned.item_id}' not found.")
    with pytest.raises(openai.NotFoundError):
        client_b.responses.create(
            model=FAKE_MODEL,
            conversation=mine.id,
            input=[{"type": "item_reference", "id": owned.item_id}],
        )
    status, body = _send(
        http, "GET", f"/v1/conversations/{mine.id}/items?after={owned.item_id}", None, headers_b
    )
    assert (status, body["error"]["param"]) == (400, "after")
    assert _all_items(client_b, mine.id) == before


def test_listing_shows_only_the_callers_own(
    client: openai.OpenAI, client_b: openai.OpenAI, owned: Owned
) -> None:
    listed_b = [r["id"] for r in client_b.get("/responses?limit=100", cast_to=dict)["data"]]
    assert owned.response_id not in listed_b
    assert owned.chained_response_id not in listed_b
    listed_a = [r["id"] for r in client.get("/responses?limit=100", cast_to=dict)["data"]]
    assert {owned.response_id, owned.chained_response_id} <= set(listed_a)
    conversations_b = client_b.get("/conversations?limit=100", cast_to=dict)["data"]
    assert owned.conversation_id not in [c["id"] for c in conversations_b]
    found = client.get("/conversations?metadata[owner]=team-a", cast_to=dict)["data"]
    assert owned.conversation_id in [c["id"] for c in found]
    assert client_b.get("/conversations?metadata[owner]=team-a", cast_to=dict)["data"] == []


def test_keys_of_one_principal_share_its_data(
    client: openai.OpenAI, client_a2: openai.OpenAI, client_b: openai.OpenAI
) -> None:
    conversation = client_a2.conversations.create(metadata={"by": "a2"})
    assert client.conversations.retrieve(conversation.id).metadata == {"by": "a2"}
    turn = client.responses.create(model=FAKE_MODEL, input="hi", conversation=conversation.id)
    assert client_a2.responses.retrieve(turn.id).output_text == turn.output_text
    client_a2.conversations.delete(conversation.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conversation.id)
    with pytest.raises(openai.NotFoundError):
        client_b.responses.retrieve(turn.id)


# --- authentication -------------------------------------------------------------------

ROUTES = [
    ("POST", "/v1/conversations"), ("GET", "/v1/conversations"),
    ("GET", "/v1/conversations/conv_x"),
    ("POST", "/v1/conversations/conv_x"), ("DELETE", "/v1/conversations/conv_x"),
    ("GET", "/v1/conversations/conv_x/items"), ("POST", "/v1/conversations/conv_x/items"),
    ("GET", "/v1/conversations/conv_x/items/msg_x"),
    ("DELETE", "/v1/conversations/conv_x/items/msg_x"),
    ("POST", "/v1/responses"), ("GET", "/v1/responses"), ("GET", "/v1/responses/resp_x"),
    ("DELETE", "/v1/responses/resp_x"), ("GET", "/v1/responses/resp_x/input_items"),
    ("POST", "/v1/responses/resp_x/cancel"), ("POST", "/v1/chat/completions"),
    ("POST", "/v1/embeddings"), ("GET", "/v1/models"), ("GET", "/v1/models/fake-model"),
    ("GET", "/v1/no-such-route"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer sk-sec-team-a-0123456789abcdeX", "Bearer", "sk-sec-team-a-0123456789abcdef",
     "Basic c2stc2VjOng="],
    ids=["missing", "wrong", "empty", "no scheme", "basic"],
)  # fmt: skip
def test_every_api_route_needs_a_key(
    http: httpx2.Client, method: str, path: str, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}
    response = http.request(method, path, json={}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_api_key"
    assert error["param"] is None
    assert "sk-sec-team-a-0123456789abcdef" not in error["message"]


def test_a_body_too_large_for_the_server_still_gets_401(http: httpx2.Client) -> None:
    response = http.post("/v1/conversations", content=b"x" * 1_000_000)
    assert response.status_code == 401


def test_the_openai_client_sees_an_authentication_error(client_for: Any) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        client_for("sk-not-a-key-of-this-server").conversations.create()
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert caught.value.message.startswith("Error code: 401 - ")
    assert "Incorrect API key provided: sk-" in caught.value.message


def test_health_and_the_openapi_document_are_open(http: httpx2.Client) -> None:
    assert http.get("/v1/health").json() == {"status": "ok"}
    assert http.get("/openapi.json").status_code == 200


def test_the_ui_loads_without_a_key_and_its_calls_need_one(http: httpx2.Client) -> None:
    page = http.get("/ui")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert http.get("/ui/app.js").status_code == 200
    assert http.get("/v1/conversations").status_code == 401
