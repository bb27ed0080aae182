"""Bad input: the right status, the OpenAI error body, a `param` naming the field."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest


def _error(response: httpx2.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


def test_21_items_on_create_is_400(client: openai.OpenAI) -> None:
    items: list[Any] = [{"role": "user", "content": str(n)} for n in range(21)]
    with pytest.raises(openai.BadRequestError) as caught:
        client.conversations.create(items=items)
    assert caught.value.param == "items"
    assert caught.value.code == "array_above_max_length"
    assert caught.value.type == "invalid_request_error"


def test_items_create_needs_1_to_20_items(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()
    for count, code in ((0, "array_below_min_length"), (21, "array_above_max_length")):
        items: list[Any] = [{"role": "user", "content": "x"}] * count
        with pytest.raises(openai.BadRequestError) as caught:
            client.conversations.items.create(conversation.id, items=items)
        assert caught.value.param == "items"
        assert caught.value.code == code
    # Nothing was appended by the failed calls.
    assert client.conversations.items.list(conversation.id).data == []


def test_items_is_required(client: openai.OpenAI, http: httpx2.Client) -> None:
    conversation = client.conversations.create()
    response = http.post(f"/v1/conversations/{conversation.id}/items", json={})
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "missing_required_parameter"
    assert error["param"] == "items"


@pytest.mark.parametrize(
    ("metadata", "param", "code"),
    [
        ({f"k{n}": "v" for n in range(17)}, "metadata", "object_above_max_properties"),
        ({"k" * 65: "v"}, "metadata." + "k" * 65, "string_above_max_length"),
        ({"k": "v" * 513}, "metadata.k", "string_above_max_length"),
        ({"k": 5}, "metadata.k", "invalid_type"),
    ],
)
def test_metadata_limits(
    client: openai.OpenAI, metadata: dict[str, Any], param: str, code: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.conversations.create(metadata=metadata)
    assert caught.value.param == param
    assert caught.value.code == code
    conversation = client.conversations.create(metadata={"ok": "yes"})
    with pytest.raises(openai.BadRequestError) as caught:
        client.conversations.update(conversation.id, metadata=metadata)
    assert caught.value.param == param
    assert client.conversations.retrieve(conversation.id).metadata == {"ok": "yes"}


def test_metadata_at_the_limits_is_fine(client: openai.OpenAI) -> None:
    metadata = {f"{n:02d}" + "k" * 62: "v" * 512 for n in range(16)}
    conversation = client.conversations.create(metadata=metadata)
    assert conversation.metadata == metadata


@pytest.mark.parametrize(
    ("item", "param", "code"),
    [
        ({"role": "robot", "content": "hi"}, "items[0].role", "invalid_value"),
        ({"role": "user"}, "items[0].content", "missing_required_parameter"),
        ({"role": "user", "content": 5}, "items[0].content", "invalid_type"),
        ({"role": "user", "content": [{"type": "bogus", "text": "x"}]},
         "items[0].content[0].type", "invalid_value"),
        ({"role": "user", "content": [{"type": "output_text", "text": "x"}]},
         "items[0].content[0].type", "invalid_value"),
        ({"role": "user", "content": [{"type": "input_text"}]},
         "items[0].content[0].text", "missing_required_parameter"),
        ({"role": "user", "content": "x", "phase": "final_answer"},
         "items[0].phase", "unknown_parameter"),
        ({"type": "teleport", "where": "mars"}, "items[0].type", "invalid_value"),
        ({"type": "function_call", "name": "f", "arguments": "{}"},
         "items[0].call_id", "missing_required_parameter"),
        ({"type": "function_call", "call_id": "c", "name": "f", "arguments": {"a": 1}},
         "items[0].arguments", "invalid_type"),
        ({"type": "message", "id": "fc_wrongprefix", "role": "user", "content": "x"},
         "items[0].id", "invalid_value"),
        ({"type": "mcp_call", "server_label": 1, "name": "t", "arguments": "{}"},
         "items[0].server_label", "invalid_type"),
        ("just a string", "items[0]", "invalid_type"),
    ],
)  # fmt: skip
def test_bad_items_name_the_field(client: openai.OpenAI, item: Any, param: str, code: str) -> None:
    conversation = client.conversations.create()
    good: Any = {"role": "user", "content": "fine"}
    with pytest.raises(openai.BadRequestError) as caught:
        client.conversations.items.create(conversation.id, items=[good, item])
    assert caught.value.param == param.replace("items[0]", "items[1]")
    assert caught.value.code == code
    assert caught.value.type == "invalid_request_error"
    # The good item before the bad one was not written either.
    assert client.conversations.items.list(conversation.id).data == []


def test_unknown_item_reference_is_404(client: openai.OpenAI) -> None:
    conversation = client.conversations.create()
    with pytest.raises(openai.NotFoundError) as caught:
        client.conversations.items.create(
            conversation.id, items=[{"type": "item_reference", "id": "msg_nothere"}]
        )
    assert caught.value.message.endswith("Item with id 'msg_nothere' not found.")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/conversations/notaconv"),
        ("POST", "/v1/conversations/resp_123"),
        ("DELETE", "/v1/conversations/abc"),
        ("GET", "/v1/conversations/abc/items"),
        ("GET", "/v1/conversations/abc/items/msg_1"),
    ],
)
def test_malformed_conversation_id_is_400(http: httpx2.Client, method: str, path: str) -> None:
    response = http.request(method, path, json={"metadata": {}})
    assert response.status_code == 400
    error = _error(response)
    assert error["param"] == "conversation_id"
    assert error["code"] == "invalid_value"
    assert "Expected an ID that begins with 'conv'" in error["message"]


def test_invalid_json_is_400(http: httpx2.Client) -> None:
    response = http.post(
        "/v1/conversations", content=b'{"metadata": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    error = _error(response)
    assert error["type"] == "invalid_request_error"
    assert "JSON" in error["message"]


def test_body_that_is_not_an_object_is_400(http: httpx2.Client) -> None:
    response = http.post("/v1/conversations", json=[1, 2])
    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_type"


def test_unknown_body_key_is_400(http: httpx2.Client) -> None:
    response = http.post("/v1/conversations", json={"metadata": {}, "colour": "blue"})
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "unknown_parameter"
    assert error["param"] == "colour"


def test_update_needs_metadata(http: httpx2.Client, client: openai.OpenAI) -> None:
    conversation = client.conversations.create()
    response = http.post(f"/v1/conversations/{conversation.id}", json={})
    assert response.status_code == 400
    assert _error(response)["code"] == "missing_required_parameter"


@pytest.mark.parametrize(
    ("query", "param", "code"),
    [
        ({"limit": "0"}, "limit", "integer_out_of_range"),
        ({"limit": "101"}, "limit", "integer_out_of_range"),
        ({"limit": "ten"}, "limit", "invalid_type"),
        ({"order": "sideways"}, "order", "invalid_value"),
        ({"include[]": "everything"}, "include[0]", "invalid_value"),
        ({"after": "msg_unknown"}, "after", "invalid_value"),
    ],
)
def test_bad_list_query_is_400(
    http: httpx2.Client, client: openai.OpenAI, query: dict[str, str], param: str, code: str
) -> None:
    conversation = client.conversations.create(items=[{"role": "user", "content": "x"}])
    response = http.get(f"/v1/conversations/{conversation.id}/items", params=query)
    assert response.status_code == 400
    error = _error(response)
    assert error["param"] == param
    assert error["code"] == code


def test_oversized_body_is_413(http: httpx2.Client) -> None:
    huge = b'{"metadata": {"k": "' + b"x" * (33 * 1024 * 1024) + b'"}}'
    response = http.post(
        "/v1/conversations", content=huge, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert _error(response)["type"] == "invalid_request_error"


def test_unknown_path_and_method(http: httpx2.Client) -> None:
    response = http.get("/v1/nothing-here")
    assert response.status_code == 404
    assert _error(response)["message"] == "Invalid URL (GET /v1/nothing-here)"
    response = http.put("/v1/conversations")
    assert response.status_code == 405
    _error(response)


def test_never_422(http: httpx2.Client, client: openai.OpenAI) -> None:
    conversation = client.conversations.create()
    bodies: list[Any] = [{"items": "nope"}, {"items": [None]}, {"items": [{}]}, {"items": [[]]}]
    for body in bodies:
        response = http.post(f"/v1/conversations/{conversation.id}/items", json=body)
        assert response.status_code == 400, body
        _error(response)
