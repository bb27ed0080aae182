"""The OpenAI Agents SDK, unchanged, runs a long conversation against this server with
server-side compaction (`context_management`), on a conversation and on a chain, and
uses a function tool; it never gets a 400."""

from __future__ import annotations

import asyncio

import pytest

agents = pytest.importorskip("agents")

from agents import (  # noqa: E402
    Agent,
    ModelSettings,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI  # noqa: E402

from convostack.testing.stack import Target  # noqa: E402
from convostack.testing.upstream import FAKE_MODEL as MODEL  # noqa: E402
from convostack.testing.upstream import Upstream  # noqa: E402

set_tracing_disabled(True)
COMPACT = ModelSettings(context_management=[{"type": "compaction", "compact_threshold": 150}])


@function_tool
def lookup(text: str) -> str:
    """Look something up."""
    return f"looked up: {text}"


async def _run_turns(target: Target, turns: int, chained: bool) -> list[str]:
    async with target.async_http_client() as http:
        client = AsyncOpenAI(base_url=target.base_url, api_key="k", http_client=http)
        agent = Agent(
            name="helper", instructions="Be brief.", tools=[lookup],
            model=OpenAIResponsesModel(model=MODEL, openai_client=client),
            model_settings=COMPACT,
        )  # fmt: skip
        conversation = None if chained else (await client.conversations.create()).id
        previous: str | None = None
        answers = []
        for n in range(turns):
            text = "call lookup" if n == 3 else f"turn {n}: tell me more about topic {n}"
            result = await Runner.run(
                agent, text, conversation_id=conversation, previous_response_id=previous
            )
            previous = result.last_response_id if chained else None
            answers.append(str(result.final_output))
        return answers


@pytest.mark.parametrize("chained", [False, True], ids=["conversation", "chain"])
def test_a_long_agent_run_with_compaction(
    stack_target: Target, upstream: Upstream, chained: bool
) -> None:
    answers = asyncio.run(_run_turns(stack_target, 20, chained))
    assert len(answers) == 20
    assert answers[-1].startswith("echo: turn 19:")
    # The tool round: the SDK ran the function and its output reached the model.
    tool_results = [m for r in upstream.chat_requests() for m in r["messages"]
                    if m.get("role") == "tool"]  # fmt: skip
    assert any(str(m.get("content")).startswith("looked up: ") for m in tool_results)
    # Compaction happened and the model never read more than one summary.
    summaries = [
        sum(str(m.get("content", "")).startswith("Summary of the earlier") for m in r["messages"])
        for r in upstream.chat_requests()
    ]
    assert max(summaries) == 1
