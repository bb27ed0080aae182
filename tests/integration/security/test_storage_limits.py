"""Issue 12's storage and per-request work limits, through the API: concurrent turns and
the item limit, the size of one request's input, and the quotas per principal."""

from __future__ import annotations

import asyncio
from typing import Any

import openai

from convostack.testing.stack import Target
from convostack.testing.upstream import FAKE_MODEL

from .conftest import KEYS, LIMITS

# Every wait of these tests is bounded by this.
DEADLINE_SECONDS = 60.0


def _items(client: openai.OpenAI, conversation_id: str) -> list[Any]:
    return [i.model_dump() for i in client.conversations.items.list(conversation_id, limit=100)]


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
