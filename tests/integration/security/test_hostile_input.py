"""Hostile input: odd ids, huge unicode, deep nesting and SQL-looking strings are stored
and returned verbatim, or refused with a 400 (404 for an id that names nothing); never a
500, and never a change to anything else."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import httpx2
import openai
import pytest

from convostack.testing.upstream import FAKE_MODEL, Upstream

KEY = {"authorization": "Bearer sk-sec-team-a-0123456789abcdef"}  # team-a, see conftest.py
JSON_KEY = {**KEY, "content-type": "application/json"}

SQLISH = [
    "'; DROP TABLE items; --",
    '" OR 1=1 --',
    "conv_x' UNION SELECT body FROM items WHERE '1'='1",
    "%' OR owner LIKE '%",
    "1); DELETE FROM conversations; --",
    "\\'; PRAGMA writable_schema=1; --",
]
UNICODE = (
    "Zalgo: Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e"
    " RTL: \u202eevil\u202c \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627"
    " ZWJ: \U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 flags: \U0001f1fa\U0001f1f8"
    " astral: \U0001d54f\U0001d560\U0001d55a\U00020000 nul: \x00 bom: \ufeff"
    " line seps: \u2028\u2029 max: \U0010ffff noncharacter: \ufffe"
)


def _post(http: httpx2.Client, path: str, body: Any) -> httpx2.Response:
    return http.post(path, content=json.dumps(body, ensure_ascii=False).encode(), headers=JSON_KEY)


def _clean_error(response: httpx2.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def _all(http: httpx2.Client, conversation_id: str) -> list[dict[str, Any]]:
    page = http.get(f"/v1/conversations/{conversation_id}/items?order=asc&limit=100", headers=KEY)
    assert page.status_code == 200
    data: list[dict[str, Any]] = page.json()["data"]
    return data


@pytest.fixture
def conversation(http: httpx2.Client) -> str:
    created = _post(http, "/v1/conversations", {"metadata": {"k": "v"}})
    value: str = created.json()["id"]
    return value


def test_sql_looking_strings_are_stored_verbatim(http: httpx2.Client) -> None:
    metadata = {f"k{n}": text for n, text in enumerate(SQLISH)} | {SQLISH[0][:64]: SQLISH[1]}
    items = [{"role": "user", "content": text} for text in SQLISH]
    created = _post(http, "/v1/conversations", {"metadata": metadata, "items": items})
    assert created.status_code == 200, created.text
    conversation = created.json()
    assert conversation["metadata"] == metadata
    stored = _all(http, conversation["id"])
    assert [item["content"][0]["text"] for item in stored] == SQLISH
    again = http.get(f"/v1/conversations/{conversation['id']}", headers=KEY).json()
    assert again["metadata"] == metadata


@pytest.mark.parametrize("text", SQLISH)
def test_sql_looking_ids_name_nothing(http: httpx2.Client, conversation: str, text: str) -> None:
    quoted = urllib.parse.quote(text, safe="")
    for path in (
        f"/v1/conversations/{quoted}",
        f"/v1/conversations/conv_{quoted}",
        f"/v1/conversations/{conversation}/items/{quoted}",
        f"/v1/responses/resp_{quoted}",
    ):
        _clean_error(http.get(path, headers=KEY), 400, 404)  # fmt: skip
    after = http.get(f"/v1/conversations/{conversation}/items?after={quoted}", headers=KEY)
    assert _clean_error(after, 400)["param"] == "after"
    model = _post(http, "/v1/responses", {"model": text, "input": "hi"})
    assert _clean_error(model, 404)["code"] == "model_not_found"
    listed = http.get(f"/v1/responses?model={quoted}", headers=KEY)
    assert listed.json()["data"] == []
    assert http.get(f"/v1/conversations/{conversation}", headers=KEY).json()["metadata"] == {
        "k": "v"
    }


@pytest.mark.parametrize(
    "suffix",
    [
        "'; DROP TABLE items; --",
        "with spaces, ?query=1&x#frag",
        "é\U0001f600\x00",
        "x" * 200,
        "%2F..%2F",
        "..",
        "\\..\\",
    ],
)
def test_odd_caller_ids_round_trip(http: httpx2.Client, conversation: str, suffix: str) -> None:
    item_id = "msg_" + suffix
    added = _post(http, f"/v1/conversations/{conversation}/items",
                  {"items": [{"id": item_id, "role": "user", "content": "odd id"}]})  # fmt: skip
    assert added.status_code == 200, added.text
    assert added.json()["data"][0]["id"] == item_id
    quoted = urllib.parse.quote(item_id, safe="")
    fetched = http.get(f"/v1/conversations/{conversation}/items/{quoted}", headers=KEY)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["id"] == item_id
    page = http.get(f"/v1/conversations/{conversation}/items?order=asc&after={quoted}",
                    headers=KEY)  # fmt: skip
    assert page.json()["data"] == []
    deleted = http.delete(f"/v1/conversations/{conversation}/items/{quoted}", headers=KEY)
    assert deleted.status_code == 200
    _clean_error(http.get(f"/v1/conversations/{conversation}/items/{quoted}", headers=KEY), 404)


def test_ids_that_cannot_be_ours_are_refused(http: httpx2.Client, conversation: str) -> None:
    long_id = "msg_" + "9" * 300
    too_long = _post(http, f"/v1/conversations/{conversation}/items",
                     {"items": [{"id": long_id, "role": "user", "content": "x"}]})  # fmt: skip
    assert _clean_error(too_long, 400)["param"] == "items[0].id"
    slash = _post(http, f"/v1/conversations/{conversation}/items",
                  {"items": [{"id": "msg_a/b", "role": "user", "content": "x"}]})  # fmt: skip
    assert "no '/'" in _clean_error(slash, 400)["message"]
    wrong_prefix = _post(http, f"/v1/conversations/{conversation}/items",
                         {"items": [{"id": "conv_1", "role": "user", "content": "x"}]})  # fmt: skip
    assert _clean_error(wrong_prefix, 400)["param"] == "items[0].id"
    assert len(_all(http, conversation)) == 0


def test_huge_unicode_round_trips_to_the_store_and_the_model(
    http: httpx2.Client, client: openai.OpenAI, upstream: Upstream, conversation: str
) -> None:
    text = (UNICODE * (60_000 // len(UNICODE)))[:60_000]  # within the text and body limits
    added = _post(http, f"/v1/conversations/{conversation}/items",
                  {"items": [{"role": "user", "content": text}]})  # fmt: skip
    assert added.status_code == 200, added.text
    assert _all(http, conversation)[0]["content"][0]["text"] == text
    client.conversations.update(conversation, metadata={UNICODE[:60]: UNICODE[:500]})
    assert client.conversations.retrieve(conversation).metadata == {UNICODE[:60]: UNICODE[:500]}
    response = client.responses.create(model=FAKE_MODEL, input=UNICODE, conversation=conversation)
    assert upstream.last_messages()[0]["content"] == text
    assert response.output_text == f"echo: {UNICODE} [2 messages]"
    assert client.responses.retrieve(response.id).output_text == response.output_text


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for n in range(depth):
        value = [value] if n % 2 else {"d": value}
    return value


@pytest.mark.parametrize("depth", [50, 150, 190, 260, 1_000, 100_000])
def test_deep_nesting_is_stored_verbatim_or_refused(
    http: httpx2.Client, conversation: str, depth: int
) -> None:
    annotation = {"type": "url_citation", "url": "u", "title": "t", "start_index": 0,
                  "end_index": 1, "deep": _nested(depth)}  # fmt: skip
    item = {"role": "assistant", "content": [{"type": "output_text", "text": "x",
                                              "annotations": [annotation]}]}  # fmt: skip
    body = '{"items": [' + json.dumps(item) + "]}" if depth < 500 else (
        '{"items": [{"role": "user", "content": ' + "[" * depth + "]" * depth + "}]}"
    )  # fmt: skip
    response = http.post(f"/v1/conversations/{conversation}/items", content=body, headers=JSON_KEY)
    if response.status_code == 200:
        stored = _all(http, conversation)[-1]
        assert stored["content"][0]["annotations"] == [annotation]
    else:
        _clean_error(response, 400, 413)
        assert _all(http, conversation) == []


@pytest.mark.parametrize("depth", [150, 5_000])
@pytest.mark.parametrize(
    ("path", "body"),
    [("/v1/responses", {"model": FAKE_MODEL, "input": "x", "text": {"format": {
        "type": "json_schema", "name": "n", "schema": {"type": "object", "deep": "DEEP"}}}}),
     ("/v1/responses", {"model": FAKE_MODEL, "input": "x", "stream": True, "tools": [
         {"type": "function", "name": "f", "parameters": {"deep": "DEEP"}}]}),
     ("/v1/chat/completions", {"model": FAKE_MODEL, "messages": [{"role": "user", "content": "x"}],
                               "response_format": {"deep": "DEEP"}})],
    ids=["text format", "tool parameters", "chat"],
)  # fmt: skip
def test_deep_nesting_elsewhere(http: httpx2.Client, path: str, body: Any, depth: int) -> None:
    deep = "[" * depth + "]" * depth
    content = json.dumps(body).replace('"DEEP"', deep)
    response = http.post(path, content=content, headers=JSON_KEY)
    if response.status_code != 200:
        _clean_error(response, 400)


@pytest.mark.parametrize(
    "raw",
    [b"", b"null", b"[]", b'"text"', b"42", b"{", b'{"items": [}', b"\xff\xfe{}",
     b'{"metadata": {"k": "\\ud800"}}', b'{"a": NaN}', b"{}" * 1000, b'{"items": null}'],
)  # fmt: skip
def test_bodies_that_are_not_objects(http: httpx2.Client, raw: bytes) -> None:
    for path in ("/v1/conversations", "/v1/responses", "/v1/chat/completions"):
        response = http.post(path, content=raw, headers=JSON_KEY)
        if response.status_code != 200:
            _clean_error(response, 400)
