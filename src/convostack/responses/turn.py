"""One turn, validated and ready to run: everything checked before any model call or
stream starts, so that every mistake is a real HTTP error."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from convostack.conversations.items import Item
from convostack.conversations.service import ConversationService, PreparedItems, check_include
from convostack.errors import (
    InvalidRequestError,
    NotFoundError,
    conversation_not_found,
)
from convostack.ids import check_id, new_id
from convostack.limits import Limits
from convostack.metadata import check_metadata
from convostack.providers.base import JSONDict
from convostack.providers.router import ModelRouter, Route
from convostack.responses.context import chat_request, estimate_tokens, to_messages
from convostack.responses.envelope import response_object
from convostack.responses.models import FunctionTool, FunctionToolChoice, ResponseCreate
from convostack.storage.base import ConversationMissing, ResponseMissing, Store
from convostack.validation import to_api_error


@dataclass
class PreparedTurn:
    owner: str
    response_id: str
    created_at: int
    body: ResponseCreate
    route: Route
    conversation_id: str | None
    metadata: dict[str, str]
    input_items: PreparedItems
    request: JSONDict
    store: bool
    dropped_items: int = 0

    def envelope(self, status: str, output: list[JSONDict], **extra: Any) -> JSONDict:
        response = response_object(
            response_id=self.response_id,
            created_at=self.created_at,
            body=self.body,
            model=self.route.public_id,
            metadata=self.metadata,
            conversation_id=self.conversation_id,
            status=status,
            output=output,
            store=self.store,
            **extra,
        )
        if self.dropped_items:
            # truncation "auto" says what it did: how many of the oldest items the model
            # did not see (an extension field; the client keeps unknown fields).
            response["truncation_details"] = {"dropped_items": self.dropped_items}
        return response


def _conversation_id(value: Any) -> str | None:
    if value is None:
        return None
    conversation_id = value if isinstance(value, str) else value.id
    return check_id(conversation_id, "conv", "conversation")


def _check_unsupported(body: ResponseCreate) -> None:
    if body.messages is not None:
        raise InvalidRequestError(
            "Unsupported parameter: 'messages'. In the Responses API, this parameter has "
            "moved to 'input'. Try again with the new parameter.",
            code="unsupported_parameter",
            param="messages",
        )
    if body.background:
        raise InvalidRequestError(
            "Background responses are not supported by this server; leave 'background' "
            "out or set it to false.",
            code="unsupported_value",
            param="background",
        )
    if body.prompt is not None:
        raise NotFoundError(f"Prompt with id '{body.prompt.get('id')}' not found.")


def _check_limits(body: ResponseCreate, limits: Limits) -> None:
    limits.check_tool_count(len(body.tools or ()))
    limits.check_max_output_tokens(body.max_output_tokens)
    limits.check_text(body.instructions, "instructions")


def _check_tools(body: ResponseCreate) -> None:
    tools = body.tools or []
    names = set()
    for n, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind != "function":
            raise InvalidRequestError(
                f"Tool type '{kind}' is not supported by this server yet; only 'function' "
                "tools are.",
                code="unsupported_value",
                param=f"tools[{n}].type",
            )
        try:
            FunctionTool.model_validate(tool)
        except ValidationError as exc:
            raise to_api_error(exc, prefix=f"tools[{n}]") from None
        names.add(tool["name"])
    choice = body.tool_choice
    if isinstance(choice, FunctionToolChoice) and choice.name not in names:
        raise InvalidRequestError(
            f"Tool choice '{choice.name}' not found in 'tools' parameter.",
            code="invalid_value",
            param="tool_choice",
        )


class TurnPreparer:
    def __init__(self, store: Store, conversations: ConversationService, models: ModelRouter):
        self._store = store
        self._conversations = conversations
        self._models = models

    async def prepare(self, owner: str, body: ResponseCreate) -> PreparedTurn:
        _check_unsupported(body)
        model = body.model or self._models.default_model
        if not model:
            raise InvalidRequestError(
                "Missing required parameter: 'model'.",
                code="missing_required_parameter",
                param="model",
            )
        conversation_id = _conversation_id(body.conversation)
        if conversation_id and body.previous_response_id:
            raise InvalidRequestError(
                "Mutually exclusive parameters. Ensure you are only providing one of: "
                "'previous_response_id' or 'conversation'.",
                code="mutually_exclusive_parameters",
            )
        check_include(body.include or [])
        metadata = check_metadata(body.metadata)
        _check_limits(body, self._conversations.limits)
        _check_tools(body)
        raw_input: list[Any] = (
            [{"role": "user", "content": body.input}] if isinstance(body.input, str) and body.input
            else list(body.input or []) if not isinstance(body.input, str) else []
        )  # fmt: skip
        if not raw_input and not conversation_id and not body.previous_response_id:
            raise InvalidRequestError(
                "Missing required parameter: 'input'. Give an input, or a 'conversation' "
                "or 'previous_response_id' to continue from.",
                code="missing_required_parameter",
            )
        route = await self._models.resolve(model)
        input_items = await self._conversations.prepare_items(owner, raw_input, "input")
        history = await self._history(owner, conversation_id, body.previous_response_id)
        if conversation_id is not None:
            # The turn appends its input and at least one output item.
            self._conversations.limits.check_conversation_size(
                conversation_id, len(history), len(input_items.items) + 1, "conversation"
            )
        new_input = [orjson.loads(item.body) for item in input_items.items]
        dropped, history = self._truncate(body, route, history, new_input)
        return PreparedTurn(
            owner=owner,
            response_id=new_id("resp"),
            created_at=int(time.time()),
            body=body,
            route=route,
            conversation_id=conversation_id,
            metadata=metadata,
            input_items=input_items,
            request=chat_request(body, route.model.id, history, new_input),
            store=body.store is not False,
            dropped_items=dropped,
        )

    async def _history(
        self, owner: str, conversation_id: str | None, previous_response_id: str | None
    ) -> list[Item]:
        if conversation_id is not None:
            try:
                bodies = await self._store.all_items(owner, conversation_id)
            except ConversationMissing:
                raise conversation_not_found(conversation_id) from None
            return [orjson.loads(b) for b in bodies]
        if previous_response_id is not None:
            try:
                chain = await self._store.response_chain(owner, previous_response_id)
            except ResponseMissing:
                raise InvalidRequestError(
                    f"Previous response with id '{previous_response_id}' not found.",
                    code="previous_response_not_found",
                    param="previous_response_id",
                ) from None
            history: list[Item] = []
            for stored in chain:
                history += orjson.loads(stored.input_items)
                history += orjson.loads(stored.body)["output"]
            return history
        return []

    @staticmethod
    def _truncate(
        body: ResponseCreate, route: Route, history: list[Item], new_input: list[Item]
    ) -> tuple[int, list[Item]]:
        """With truncation "auto", drop the oldest history items until the turn fits."""
        limit = route.model.context_length
        if body.truncation != "auto" or not limit:
            return 0, history
        budget = limit - (body.max_output_tokens or limit // 4)
        fixed = estimate_tokens(to_messages(new_input)) + len(body.instructions or "") // 3
        sizes = [estimate_tokens(to_messages([item])) for item in history]
        total = fixed + sum(sizes)
        dropped = 0
        while dropped < len(history) and total > budget:
            total -= sizes[dropped]
            dropped += 1
        # Never start on a tool result whose call was dropped: the model could not use it.
        while dropped < len(history) and history[dropped].get("type") == "function_call_output":
            dropped += 1
        return dropped, history[dropped:]
