"""GET /v1/conversations (an extension): the caller's conversations, newest first by
default, in cursor pages, filtered by `metadata[KEY]=VALUE`. The `openai` client has no
method for it; its generic `get` and the raw `http` fixture send the query."""

from __future__ import annotations

import secrets
from typing import Any

import httpx2
import openai
import pytest


def _page(client: openai.OpenAI, query: str) -> dict[str, Any]:
    page: dict[str, Any] = client.get(f"/conversations?{query}", cast_to=dict)
    return page


@pytest.fixture
def tagged(client: openai.OpenAI) -> tuple[str, list[str]]:
    """Five conversations carrying a tag of their own (the database is shared), oldest
    first."""
    tag = secrets.token_hex(8)
    ids = [
        client.conversations.create(metadata={"tag": tag, "n": str(n), "odd": str(n % 2)}).id
        for n in range(5)
    ]
    return tag, ids


def test_newest_first_in_cursor_pages(client: openai.OpenAI, tagged: tuple[str, list[str]]) -> None:
    tag, ids = tagged
    first = _page(client, f"metadata[tag]={tag}&limit=2")
    assert first["object"] == "list"
    assert [c["id"] for c in first["data"]] == [ids[4], ids[3]]
    assert (first["first_id"], first["last_id"], first["has_more"]) == (ids[4], ids[3], True)
    assert first["data"][0] == client.conversations.retrieve(ids[4]).model_dump()
    second = _page(client, f"metadata[tag]={tag}&limit=2&after={first['last_id']}")
    assert [c["id"] for c in second["data"]] == [ids[2], ids[1]]
    last = _page(client, f"metadata[tag]={tag}&limit=2&after={second['last_id']}")
    assert ([c["id"] for c in last["data"]], last["has_more"]) == ([ids[0]], False)


def test_oldest_first_and_several_metadata_pairs(
    client: openai.OpenAI, tagged: tuple[str, list[str]]
) -> None:
    tag, ids = tagged
    page = _page(client, f"metadata[tag]={tag}&metadata[odd]=1&order=asc")
    assert [c["id"] for c in page["data"]] == [ids[1], ids[3]]
    none = _page(client, f"metadata[tag]={tag}&metadata[odd]=2")
    assert none == {"object": "list", "data": [], "first_id": "", "last_id": "", "has_more": False}


def test_the_default_lists_the_newest_without_a_filter(client: openai.OpenAI) -> None:
    newest = client.conversations.create()
    page = _page(client, "limit=1")
    assert [c["id"] for c in page["data"]] == [newest.id]
    client.conversations.delete(newest.id)
    assert newest.id not in [c["id"] for c in _page(client, "limit=100")["data"]]


@pytest.mark.parametrize(
    ("query", "param", "code"),
    [
        ("limit=0", "limit", "integer_out_of_range"),
        ("limit=101", "limit", "integer_out_of_range"),
        ("limit=x", "limit", "invalid_type"),
        ("order=newest", "order", "invalid_value"),
        ("after=conv_nosuchthing", "after", "invalid_value"),
        ("&".join(f"metadata[k{n}]=v" for n in range(17)), "metadata", None),
        (f"metadata[{'k' * 65}]=v", None, "string_above_max_length"),
    ],
    ids=["limit 0", "limit 101", "limit text", "order", "unknown cursor", "17 keys", "long key"],
)
def test_bad_queries_are_400_in_the_openai_body(
    http: httpx2.Client, query: str, param: str | None, code: str | None
) -> None:
    response = http.get(f"/v1/conversations?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
