"""A Codex-shaped session over WebSocket mode: `store: false` on every request, `apply_patch`
as a custom tool under its Lark grammar, `shell` as a function, encrypted reasoning sent
back by a stateless client, then 20 tool calls chained on the connection."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from convostack.testing.stack import Target
from convostack.testing.upstream import FAKE_MODEL as MODEL
from convostack.testing.upstream import Upstream

from .test_custom_tools import APPLY_PATCH, PATCH

SHELL: Any = {
    "type": "function", "name": "shell", "description": "Runs a shell command",
    "parameters": {"type": "object", "properties": {"input": {"type": "string"}},
                   "required": ["input"]},
}  # fmt: skip
TOOLS: Any = [APPLY_PATCH, SHELL]
COMMON: Any = {
    "model": MODEL, "tools": TOOLS, "store": False, "parallel_tool_calls": True,
    "include": ["reasoning.encrypted_content"], "instructions": "You are Codex.",
}  # fmt: skip
ROUNDS = 10  # two calls a round, apply_patch and shell: 20 tool calls


def _final(connection: Any) -> Any:
    for event in connection:
        if event.type in ("response.completed", "response.incomplete", "response.failed"):
            assert event.type == "response.completed", event
            return event.response
        assert event.type != "error", event
    raise AssertionError("the connection closed")


def test_a_codex_session(stack_target: Target, upstream: Upstream) -> None:
    if stack_target.mode != "server":
        pytest.skip("the in-process transport cannot upgrade to a WebSocket")
    client = openai.OpenAI(base_url=stack_target.base_url, api_key="k", max_retries=0)
    with client.responses.connect() as connection:
        opening: Any = {"role": "user", "content": "think about the patch"}
        connection.response.create(**COMMON, input=[opening])
        first = _final(connection)
        reasoning, answer = first.output
        assert reasoning.encrypted_content
        thought = reasoning.content[0].text
        # A stateless client: the whole history, the reasoning item without its text.
        sealed = {"type": "reasoning", "id": reasoning.id, "summary": [],
                  "encrypted_content": reasoning.encrypted_content}  # fmt: skip
        task = "call apply_patch shell " + json.dumps({"input": PATCH}) + f" x{ROUNDS}"
        history: Any = [opening, sealed, answer.model_dump(exclude_none=True),
                        {"role": "user", "content": task}]  # fmt: skip
        connection.response.create(**COMMON, input=history)
        response = _final(connection)
        calls = 0
        while True:
            made = [item for item in response.output if item.type != "message"]
            if not made:
                break
            calls += len(made)
            kinds = sorted(item.type for item in made)
            assert kinds == ["custom_tool_call", "function_call"]
            patch = next(item for item in made if item.type == "custom_tool_call")
            assert patch.input == PATCH
            outputs: Any = [
                {"type": f"{item.type}_output", "call_id": item.call_id, "output": "ok"}
                for item in made
            ]
            connection.response.create(**COMMON, input=outputs,
                                       previous_response_id=response.id)  # fmt: skip
            response = _final(connection)
        assert calls == 2 * ROUNDS
        assert response.output_text.startswith("echo")
    requests = upstream.chat_requests()
    assert len(requests) == 2 + ROUNDS
    for request in requests[1:]:  # the sealed reasoning reached the model every time
        (said,) = [m for m in request["messages"] if "reasoning_content" in m]
        assert said["reasoning_content"] == thought
        names = [t["function"]["name"] for t in request["tools"]]
        assert names == ["apply_patch", "shell"]
