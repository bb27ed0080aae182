"""Everything the Responses and Conversations routes send, checked field by field against
the `openai` package's models: nothing they do not define, nothing they require missing."""

from __future__ import annotations

from typing import Any

import httpx2
import orjson
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.conversations import Conversation, ConversationItem
from openai.types.responses import Response, ResponseStreamEvent

from convostack.testing.upstream import FAKE_MODEL as MODEL
from convostack.testing.wire import assert_exact

SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}}
FUNCTION: Any = {"type": "function", "name": "lookup", "parameters": SCHEMA}


def _post(http: httpx2.Client, path: str, body: Any) -> Any:
    answer = http.post(path, json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_responses_items_and_conversations_match_the_types(http: httpx2.Client) -> None:
    conversation = _post(http, "/v1/conversations", {"metadata": {"k": "v"},
                         "items": [{"role": "assistant", "content": "earlier"}]})  # fmt: skip
    assert_exact(Conversation, conversation)
    on = {"model": MODEL, "conversation": conversation["id"]}
    plain = _post(http, "/v1/responses", {**on, "input": "hello"})
    called = _post(http, "/v1/responses", {**on, "input": "call lookup", "tools": [FUNCTION]})
    output = [{"type": "function_call_output", "call_id": called["output"][0]["call_id"],
               "output": "found"}]  # fmt: skip
    answered = _post(http, "/v1/responses", {**on, "input": output, "tools": [FUNCTION]})
    for response in (plain, called, answered):
        assert_exact(Response, response)
        assert_exact(Response, http.get(f"/v1/responses/{response['id']}").json())
    items = http.get(f"/v1/conversations/{conversation['id']}/items?limit=100").json()["data"]
    assert len(items) == 7
    for item in items:
        assert_exact(ConversationItem, item)


def test_every_stream_event_matches_its_type(http: httpx2.Client) -> None:
    streamed = {"model": MODEL, "stream": True}
    for body in ({**streamed, "input": "hello"},
                 {**streamed, "input": "call lookup", "tools": [FUNCTION]}):  # fmt: skip
        with http.stream("POST", "/v1/responses", json=body) as answer:
            events = [orjson.loads(line[6:]) for line in answer.iter_lines()
                      if line.startswith("data: ")]  # fmt: skip
        assert events
        for event in events:
            assert_exact(ResponseStreamEvent, event)
        replayed_id = events[-1]["response"]["id"]
        with http.stream("GET", f"/v1/responses/{replayed_id}?stream=true") as answer:
            for line in answer.iter_lines():
                if line.startswith("data: "):
                    assert_exact(ResponseStreamEvent, orjson.loads(line[6:]))


def test_chat_completions_match_the_types(http: httpx2.Client) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]}
    assert_exact(ChatCompletion, _post(http, "/v1/chat/completions", body))
    streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
    with http.stream("POST", "/v1/chat/completions", json=streamed) as answer:
        chunks = [orjson.loads(line[6:]) for line in answer.iter_lines()
                  if line.startswith("data: ") and line != "data: [DONE]"]  # fmt: skip
    assert chunks
    for chunk in chunks:
        assert_exact(ChatCompletionChunk, chunk)


def test_an_engines_reasoning_becomes_a_reasoning_item(http: httpx2.Client) -> None:
    plain = _post(http, "/v1/responses", {"model": MODEL, "input": "think about tea"})
    assert_exact(Response, plain)
    reasoning, message = plain["output"]
    assert reasoning["type"] == "reasoning"
    assert reasoning["content"] == [
        {"type": "reasoning_text", "text": "first I consider: about tea"}
    ]
    assert message["type"] == "message"
    body = {"model": MODEL, "input": "think about tea", "stream": True}
    with http.stream("POST", "/v1/responses", json=body) as answer:
        events = [orjson.loads(line[6:]) for line in answer.iter_lines()
                  if line.startswith("data: ")]  # fmt: skip
    kinds = [event["type"] for event in events]
    assert kinds.index("response.reasoning_text.done") < kinds.index("response.output_text.delta")
    for event in events:
        assert_exact(ResponseStreamEvent, event)
    final = events[-1]["response"]
    assert final["output"][0]["content"] == reasoning["content"]
