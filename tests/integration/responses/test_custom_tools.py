"""`custom` tools (free-form input, optionally under a grammar) with the fake upstream."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from convostack.testing.upstream import FAKE_MODEL as MODEL
from convostack.testing.upstream import Upstream

# Codex's apply_patch, shortened: a Lark grammar over the whole patch.
PATCH_GRAMMAR = r"""
start: begin_patch hunk+ end_patch
begin_patch: "*** Begin Patch" LF
end_patch: "*** End Patch" LF?
hunk: "*** Add File: " filename LF add_line+
filename: /(.+)/
add_line: "+" /(.+)/ LF
%import common.LF
"""
PATCH = "*** Begin Patch\n*** Add File: a.txt\n+hello\n*** End Patch\n"
APPLY_PATCH: Any = {
    "type": "custom", "name": "apply_patch", "description": "Edit files",
    "format": {"type": "grammar", "syntax": "lark", "definition": PATCH_GRAMMAR},
}  # fmt: skip
DIGITS: Any = {
    "type": "custom", "name": "digits",
    "format": {"type": "grammar", "syntax": "regex", "definition": r"[0-9]+"},
}  # fmt: skip
FREE: Any = {"type": "custom", "name": "note"}


def _call(tool: str, text: str) -> str:
    import json

    return f"call {tool} " + json.dumps({"input": text})


def test_a_custom_call_for_the_caller_and_its_output_back(
    client: openai.OpenAI, upstream: Upstream
) -> None:
    first = client.responses.create(
        model=MODEL, input=_call("apply_patch", PATCH), tools=[APPLY_PATCH, FREE], store=False
    )
    (call,) = first.output
    assert call.type == "custom_tool_call"
    assert (call.name, call.input) == ("apply_patch", PATCH)
    assert call.id is not None
    assert call.id.startswith("ctc_")
    offered = upstream.chat_requests()[-1]["tools"]
    assert offered[0]["function"]["name"] == "apply_patch"
    assert offered[0]["function"]["parameters"]["properties"] == {"input": {"type": "string"}}
    assert "lark grammar" in offered[0]["function"]["description"]
    assert [t.type for t in first.tools] == ["custom", "custom"]

    second = client.responses.create(
        model=MODEL,
        tools=[APPLY_PATCH, FREE],
        input=[
            {"role": "user", "content": _call("apply_patch", PATCH)},
            {
                "type": "custom_tool_call",
                "call_id": call.call_id,
                "name": "apply_patch",
                "input": PATCH,
            },
            {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "Done!"},
        ],
    )
    sent = upstream.last_messages()
    assert sent[1]["tool_calls"][0]["function"]["name"] == "apply_patch"
    assert '"input"' in sent[1]["tool_calls"][0]["function"]["arguments"]
    assert sent[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "Done!"}
    assert second.output_text.startswith("echo")


def test_custom_call_streams_its_input_events(client: openai.OpenAI) -> None:
    with client.responses.stream(model=MODEL, input=_call("digits", "123"), tools=[DIGITS]) as s:
        kinds = [event.type for event in s]
        final = s.get_final_response()
    assert "response.custom_tool_call_input.delta" in kinds
    assert "response.custom_tool_call_input.done" in kinds
    assert final.output[0].type == "custom_tool_call"
    assert final.output[0].input == "123"


def test_input_that_breaks_the_grammar_fails_the_response(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as raised:
        client.responses.create(model=MODEL, input=_call("digits", "12a"), tools=[DIGITS])
    assert raised.value.status_code == 502
    assert "does not match" in raised.value.message
    with client.responses.stream(model=MODEL, input=_call("digits", "x"), tools=[DIGITS]) as s:
        events = list(s)
    assert events[-1].type == "response.failed"


def test_tool_choice_custom_names_the_tool(client: openai.OpenAI, upstream: Upstream) -> None:
    response = client.responses.create(
        model=MODEL, input="anything", tools=[FREE, DIGITS],
        tool_choice={"type": "custom", "name": "note"},
    )  # fmt: skip
    assert upstream.chat_requests()[-1]["tool_choice"] == {
        "type": "function", "function": {"name": "note"}}  # fmt: skip
    assert response.output[0].type == "custom_tool_call"
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model=MODEL, input="x", tools=[FREE],
                                tool_choice={"type": "custom", "name": "other"})  # fmt: skip
    assert raised.value.param == "tool_choice"


@pytest.mark.parametrize(
    ("tool", "param"),
    [
        ({"type": "custom"}, "tools[0].name"),
        ({"type": "custom", "name": "x", "format": {"type": "grammar", "syntax": "regex",
                                                    "definition": "("}},
         "tools[0].format.definition"),
        ({"type": "custom", "name": "x", "format": {"type": "grammar", "syntax": "lark",
                                                    "definition": "start: undefined_rule"}},
         "tools[0].format.definition"),
        ({"type": "custom", "name": "x", "format": {"type": "grammar", "syntax": "ebnf",
                                                    "definition": "a"}},
         "tools[0].format.grammar.syntax"),
    ],
)  # fmt: skip
def test_bad_custom_definitions_are_400s(client: openai.OpenAI, tool: Any, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model=MODEL, input="x", tools=[tool])
    assert raised.value.param is not None
    assert raised.value.param.startswith(param[:14])


def test_a_grammar_lark_cannot_run_is_accepted_unenforced(client: openai.OpenAI) -> None:
    """Codex's own grammar has `/(.*)/`, which llguidance runs and Lark refuses."""
    tool: Any = {
        **APPLY_PATCH,
        "format": {
            **APPLY_PATCH["format"],
            "definition": PATCH_GRAMMAR.replace("(.+)/ LF", "(.*)/ LF"),
        },
    }
    response = client.responses.create(model=MODEL, input=_call("apply_patch", "x"), tools=[tool])
    assert response.output[0].type == "custom_tool_call"


def test_a_stored_custom_call_replays_its_input_events(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input=_call("digits", "42"), tools=[DIGITS])
    with client.responses.retrieve(response.id, stream=True) as replay:
        events = list(replay)
    done = [e for e in events if e.type == "response.custom_tool_call_input.done"]
    assert [e.input for e in done] == ["42"]
    assert events[-1].type == "response.completed"
