"""Every request body, whatever JSON (or not JSON) it is, gets a 2xx or a clean 4xx in the
OpenAI error body: never a 500, never a 422 (the openai client does not expect one), never
an error of another shape.

The app runs in this process with a real SQLite store and an echo provider defined here
(no network, no model), so each example is a whole request through routing, parsing,
validation, the services and the store.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convostack.config import Config
from convostack.providers.base import JSONDict, ModelInfo, UnsupportedByProvider
from convostack.stack import Stack
from convostack.storage.sqlite import SqliteStore
from convostack.testing.stack import library_target

MODEL = "echo-model"
JSON = {"content-type": "application/json"}
EXAMPLES = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class EchoProvider:
    """A provider that answers with the last message's text: enough for whole turns."""

    id = "echo"

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(MODEL, owned_by="test")]

    @staticmethod
    def _text(request: JSONDict) -> str:
        messages = request.get("messages") or [{}]
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        return f"echo: {str(last.get('content'))[:50]}"

    async def chat(self, request: JSONDict) -> JSONDict:
        orjson.dumps(request)  # as every real provider does, to send it
        message = {"role": "assistant", "content": self._text(request)}
        return {
            "id": "chatcmpl-echo", "object": "chat.completion", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }  # fmt: skip

    async def chat_stream(self, request: JSONDict) -> AsyncIterator[JSONDict]:
        orjson.dumps(request)
        for delta, finish in (({"content": self._text(request)}, None), ({}, "stop")):
            yield {
                "id": "chatcmpl-echo", "object": "chat.completion.chunk", "created": 0,
                "model": MODEL, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }  # fmt: skip

    async def embeddings(self, request: JSONDict) -> JSONDict:
        raise UnsupportedByProvider("The echo provider has no embeddings.")


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx2.Client]:
    home: Path = tmp_path_factory.mktemp("hypothesis")
    config = Config(home=home, max_body_bytes=64 * 1024, max_item_text_chars=2000)
    stack = Stack(config, store=SqliteStore(home / "db.sqlite"), providers=[EchoProvider()])
    with library_target(config, stack) as target, target.http_client() as client:
        yield client


@pytest.fixture(scope="module")
def conversation_id(http: httpx2.Client) -> str:
    created = http.post("/v1/conversations", json={"items": [{"role": "user", "content": "x"}]})
    conversation: str = created.json()["id"]
    return conversation


@pytest.fixture(scope="module")
def response_id(http: httpx2.Client) -> str:
    created = http.post("/v1/responses", json={"model": MODEL, "input": "first"})
    response: str = created.json()["id"]
    return response


def assert_clean(response: httpx2.Response) -> None:
    """A success, or an OpenAI error body with a 4xx: nothing else."""
    status = response.status_code
    assert status < 500, response.text
    assert status != 422, response.text
    if status < 400:
        return
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["type"], str)
    assert error["param"] is None or isinstance(error["param"], str)
    assert error["code"] is None or isinstance(error["code"], str)


# --- strategies -----------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["", "conv_", "resp_x", "msg_1", "'; DROP TABLE items;--", "\x00", "é" * 9])
    | st.sampled_from([2**64, -(2**63) - 1, 10**30, 2**64 - 1, -(2**63), 1e308])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)
texts = st.text(max_size=40) | st.sampled_from(["hi", "x" * 2500])
objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)
# Shapes that pass validation and keep free-form JSON (stored, or sent to the model).
open_items = st.fixed_dictionaries({
    "role": st.just("assistant"),
    "content": st.lists(st.fixed_dictionaries({
        "type": st.just("output_text"), "text": texts,
        "annotations": st.lists(objects, max_size=2)}), min_size=1, max_size=2),
}) | st.fixed_dictionaries({
    "type": st.just("reasoning"),
    "summary": st.lists(st.fixed_dictionaries({"type": st.just("summary_text"), "text": texts}),
                        max_size=2),
}, optional={"encrypted_content": texts, "extra": json_values})  # fmt: skip
parts = st.fixed_dictionaries(
    {"type": st.sampled_from(["input_text", "output_text", "input_image", "refusal", "bogus"])},
    optional={"text": texts | json_values, "image_url": json_values, "detail": json_values,
              "annotations": json_values, "refusal": texts},
)  # fmt: skip
items = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["message", "function_call", "function_call_output",
                                 "item_reference", "reasoning", "web_search_call", "nope"])
        | json_values,
        "role": st.sampled_from(["user", "assistant", "system", "developer", "tool"])
        | json_values,
        "content": texts | st.lists(parts, max_size=3) | json_values,
        "id": st.sampled_from(["msg_1", "fc_1", "conv_x", "bad id", "msg_" + "9" * 300])
        | json_values,
        "status": st.sampled_from(["completed", "in_progress", "weird"]),
        "call_id": texts, "name": texts, "arguments": texts | json_values,
        "output": texts | json_values,
    },
)  # fmt: skip
item_lists = st.lists(items | open_items, max_size=22) | json_values
metadata = (
    st.dictionaries(st.text(max_size=70), st.text(max_size=600) | json_values, max_size=18)
    | json_values
)


def bodies(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Objects made of the endpoint's own keys (each well or badly typed), sometimes with
    an unknown key; and now and then any JSON at all."""
    known = st.fixed_dictionaries({}, optional={k: v | json_values for k, v in fields.items()})
    extra = st.dictionaries(st.sampled_from(["bogus", "seed", "messages", "input", "items"]),
                            json_values, max_size=1)  # fmt: skip
    combined = st.tuples(known, extra).map(lambda pair: {**pair[1], **pair[0]})
    return st.one_of(known, known, combined, json_values)


tools = st.fixed_dictionaries(
    {"type": st.sampled_from(["function", "web_search", "mcp"]) | json_values},
    optional={"name": texts, "parameters": objects | json_values, "strict": json_values,
              "description": json_values},
)  # fmt: skip
response_fields: dict[str, st.SearchStrategy[Any]] = {
    "model": st.sampled_from([MODEL, "", "nope"]),
    "input": texts | item_lists,
    "instructions": texts,
    "conversation": st.sampled_from(["conv_missing", "bad"]) | st.fixed_dictionaries(
        {"id": st.sampled_from(["conv_x", "x"]) | json_values}),
    "previous_response_id": st.sampled_from(["resp_missing", "bad"]),
    "store": st.booleans(),
    "stream": st.booleans(),
    "tools": st.lists(tools, max_size=3),
    "tool_choice": st.sampled_from(["auto", "none", "required", "sometimes"])
    | st.fixed_dictionaries({"type": st.just("function"), "name": texts}),
    "max_output_tokens": st.integers(min_value=-5, max_value=10**7),
    "max_tool_calls": st.integers(min_value=-1, max_value=5),
    "temperature": st.floats(min_value=-1, max_value=3),
    "top_p": st.floats(min_value=-1, max_value=2),
    "text": st.fixed_dictionaries({}, optional={"format": st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "json_object", "json_schema", "xml"])},
        optional={"name": texts, "schema": objects})}),
    "reasoning": st.fixed_dictionaries(
        {}, optional={"effort": st.sampled_from(["low", "max", "x"])}),
    "metadata": metadata,
    "truncation": st.sampled_from(["auto", "disabled", "sometimes"]),
    "include": st.lists(st.sampled_from(["message.output_text.logprobs", "nonsense"]), max_size=2),
    "background": st.booleans(),
    "prompt": json_values,
    "parallel_tool_calls": st.booleans(),
}  # fmt: skip
chat_fields: dict[str, st.SearchStrategy[Any]] = {
    "model": st.sampled_from([MODEL, "", "nope"]),
    "messages": st.lists(
        st.fixed_dictionaries({}, optional={"role": st.sampled_from(["user", "system", "x"]),
                                            "content": texts | json_values}),
        max_size=3,
    ),
    "stream": st.booleans(),
    "stream_options": st.fixed_dictionaries({}, optional={"include_usage": json_values}),
    "max_tokens": st.integers(min_value=-5, max_value=100),
    "temperature": st.floats(min_value=-1, max_value=3),
}  # fmt: skip


def _post(http: httpx2.Client, path: str, body: Any) -> httpx2.Response:
    # The stdlib encoder: it writes integers of any size, as a hostile client may.
    content = json.dumps(body).encode()
    return http.post(path, content=content, headers=JSON)


# --- one test per request model -------------------------------------------------------


@EXAMPLES
@given(body=bodies({"items": item_lists, "metadata": metadata}))
def test_conversation_create(http: httpx2.Client, body: Any) -> None:
    assert_clean(_post(http, "/v1/conversations", body))


@EXAMPLES
@given(body=bodies({"metadata": metadata}), known=st.booleans())
def test_conversation_update(
    http: httpx2.Client, conversation_id: str, body: Any, known: bool
) -> None:
    target = conversation_id if known else "conv_unknown"
    response = _post(http, f"/v1/conversations/{target}", body)
    assert_clean(response)
    if response.status_code == 200:
        assert response.json()["id"] == conversation_id


@EXAMPLES
@given(body=bodies({"items": item_lists}), include=st.lists(st.text(max_size=30), max_size=2))
def test_items_create(
    http: httpx2.Client, conversation_id: str, body: Any, include: list[str]
) -> None:
    query = urllib.parse.urlencode([("include[]", value) for value in include])
    assert_clean(_post(http, f"/v1/conversations/{conversation_id}/items?{query}", body))


@EXAMPLES
@given(body=bodies(response_fields), chain=st.booleans(), on_conversation=st.booleans())
def test_responses_create(
    http: httpx2.Client,
    conversation_id: str,
    response_id: str,
    body: Any,
    chain: bool,
    on_conversation: bool,
) -> None:
    if isinstance(body, dict) and chain:
        body["previous_response_id"] = response_id
    elif isinstance(body, dict) and on_conversation:
        body["conversation"] = conversation_id
    response = _post(http, "/v1/responses", body)
    assert_clean(response)
    if response.status_code == 200 and isinstance(body, dict) and body.get("stream") is True:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert b"response.completed" in response.content or b"response.incomplete" in (
            response.content
        )


@EXAMPLES
@given(body=bodies(chat_fields))
def test_chat_completions(http: httpx2.Client, body: Any) -> None:
    assert_clean(_post(http, "/v1/chat/completions", body))


@EXAMPLES
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_at_all(http: httpx2.Client, conversation_id: str, raw: bytes) -> None:
    for path in (
        "/v1/conversations",
        f"/v1/conversations/{conversation_id}/items",
        "/v1/responses",
        "/v1/chat/completions",
        f"/v1/conversations/{conversation_id}",
    ):
        assert_clean(http.post(path, content=raw, headers=JSON))


@settings(max_examples=60, deadline=None)
@given(
    segment=st.text(min_size=1, max_size=80).filter(lambda s: s not in (".", "..")),
    prefix=st.sampled_from(["", "conv_", "resp_", "msg_"]),
)
def test_odd_ids_in_paths(
    http: httpx2.Client, conversation_id: str, segment: str, prefix: str
) -> None:
    odd = urllib.parse.quote(prefix + segment, safe="")
    for method, path in (
        ("GET", f"/v1/conversations/{odd}"),
        ("DELETE", f"/v1/conversations/{odd}"),
        ("GET", f"/v1/conversations/{odd}/items?after={odd}"),
        ("GET", f"/v1/conversations/{conversation_id}/items/{odd}"),
        ("GET", f"/v1/conversations/{conversation_id}/items?after={odd}&limit=2"),
        ("GET", f"/v1/responses/{odd}?stream=true"),
        ("GET", f"/v1/responses/{odd}/input_items"),
        ("POST", f"/v1/responses/{odd}/cancel"),
        ("GET", f"/v1/models/{odd}"),
    ):
        response = http.request(method, path)
        assert_clean(response)
        assert response.status_code in (400, 404), (path, response.text)
