"""`POST /v1/responses/compact` and `POST /v1/responses/input_tokens`: what a turn would
send to the model, compacted into a summary, or counted, without running the turn.

A compacted window is returned, never stored: the caller sends it back as the `input` of
its next turn (or keeps a conversation, where `context_management` compacts in place).
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from convostack.conversations.service import ConversationService
from convostack.errors import InvalidRequestError
from convostack.ids import new_id
from convostack.providers.base import JSONDict
from convostack.providers.router import ModelRouter
from convostack.providers.tokens import count_tokens
from convostack.responses.compaction import Compactor, summary_request, summary_text
from convostack.responses.context import estimate_tokens
from convostack.responses.models import ConversationRef, PromptCacheOptions, ResponseCreate
from convostack.responses.output import usage_object
from convostack.responses.turn import (
    PreparedTurn,
    TurnPreparer,
    continued_conversation,
    parse_items,
)


class ResponseCompact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    input: str | list[Any] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    conversation: str | ConversationRef | None = None  # an extension: compact a conversation
    prompt_cache_key: str | None = None
    prompt_cache_options: PromptCacheOptions | None = None
    prompt_cache_retention: str | None = None
    safety_identifier: str | None = Field(None, max_length=128)
    service_tier: str | None = None
    image: dict[str, Any] | None = None


class InputTokensCount(ResponseCreate):
    """`responses.input_tokens.count`: a create's fields (and `personality`)."""

    personality: str | None = None


class CompactService:
    def __init__(
        self,
        preparer: TurnPreparer,
        conversations: ConversationService,
        models: ModelRouter,
        compactor: Compactor,
    ):
        self._preparer = preparer
        self._conversations = conversations
        self._models = models
        self._compactor = compactor

    async def compact(self, owner: str, body: ResponseCompact) -> JSONDict:
        route = await self._models.resolve(self._preparer.model_name(body.model))
        conversation_id = continued_conversation(body.conversation, body.previous_response_id)
        raw: list[Any] = (
            [{"role": "user", "content": body.input}]
            if isinstance(body.input, str)
            else list(body.input or [])
        )
        prepared = await self._conversations.prepare_items(owner, raw, "input")
        new_input = parse_items([item.body for item in prepared.items])
        self._compactor.check(new_input, "input")
        history = await self._preparer.history(owner, conversation_id, body.previous_response_id)
        everything = [*history, *new_input]
        if not everything:
            raise InvalidRequestError(
                "Nothing to compact: give an 'input', a 'previous_response_id' or a "
                "'conversation'.", code="missing_required_parameter", param="input",
            )  # fmt: skip
        seen_history, seen_input, summary = self._compactor.views(history, new_input)
        seen = [*seen_history, *seen_input]
        request = summary_request(route.model.id, seen, summary)
        if body.instructions:
            request["messages"].insert(1, {"role": "system", "content": body.instructions})
        completion = await route.provider.chat(request)
        item = self._compactor.item(
            summary_text(completion), everything[-1].get("id"), route.public_id
        )
        users = [i for i in seen if i.get("type", "message") == "message"
                 and i.get("role") == "user"]  # fmt: skip
        return {
            "id": new_id("resp"),
            "object": "response.compaction",
            "created_at": int(time.time()),
            "output": [*users, item],
            "usage": usage_object(completion.get("usage")) or usage_object({}),
        }

    async def count(self, owner: str, body: ResponseCreate) -> JSONDict:
        """Exactly what a `responses.create` with these fields would send, counted."""
        turn: PreparedTurn = await self._preparer.prepare(owner, body)
        try:
            counted = await count_tokens(turn.route.provider, turn.request)
        finally:
            await turn.tools.close()
        if counted is None:
            counted = estimate_tokens(turn.request["messages"])
        return {"object": "response.input_tokens", "input_tokens": counted}
