"""One turn, validated and ready to run: everything checked before any model call or
stream starts, so that every mistake is a real HTTP error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

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
from convostack.providers.tokens import count_tokens
from convostack.responses.compaction import CompactionPlan, Compactor
from convostack.responses.context import (
    Conversion,
    chat_request,
    convert_history,
    estimate_tokens,
    to_messages,
)
from convostack.responses.envelope import response_object
from convostack.responses.history_cache import Entry, HistoryCache, footprint
from convostack.responses.models import (
    AllowedToolsChoice,
    FunctionToolChoice,
    HostedToolChoice,
    NamedToolChoice,
    ResponseCreate,
)
from convostack.responses.moderation import mode, moderate, text_of
from convostack.responses.reasoning import open_input
from convostack.responses.tools import ToolBox, check_tools
from convostack.responses.tools.base import PrepareContext
from convostack.responses.tools.mcp_pool import McpSessionPool
from convostack.responses.tools.settings import ToolSettings
from convostack.storage.base import ConversationMissing, ResponseMissing, Store, StoredResponse


class TurnClaim(Protocol):
    """A background turn's hold on its stored row (responses/background.py)."""

    async def commit(self) -> bool:
        """Before the turn's final write: False when the row is no longer the turn's
        (cancelled, deleted, taken again), and nothing may be written."""
        ...

    async def settle(self, response: JSONDict) -> None:
        """Keeps a response that did not finish, if the row is still the turn's."""
        ...


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
    tools: ToolBox
    compactor: Compactor
    dropped_items: int = 0
    compaction: CompactionPlan | None = None
    moderation: dict[str, JSONDict] = field(default_factory=dict)  # by side: input, output
    history: list[Item] = field(default_factory=list)  # what came before, as it was read
    claim: TurnClaim | None = None  # a background turn's

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
            **extra,
        )
        if self.moderation:
            response["moderation"] = {side: self.moderation.get(side, _NOT_MODERATED)
                                      for side in ("input", "output")}  # fmt: skip
        if self.dropped_items:
            # truncation "auto" says what it did: how many of the oldest items the model
            # did not see (an extension field; the client keeps unknown fields).
            response["truncation_details"] = {"dropped_items": self.dropped_items}
        return response


_NOT_MODERATED = {
    "type": "error",
    "code": "not_moderated",
    "message": "The request's moderation policy does not cover this side.",
}

# Items a turn parses and turns into messages on the loop; more are done in a thread
# (1,000 items take about 2 ms to parse and 1 to turn into messages).
INLINE_ITEMS = 1000


_RESULTS = ("function_call_output", "custom_tool_call_output")
# A stored response in one of these is not stored again; a chain's history is kept only
# when all of its responses are. A chain longer than MAX_CHAIN is read whole (the store
# cuts it there).
_SETTLED = frozenset(("completed", "incomplete", "failed", "cancelled"))
MAX_CHAIN = 10_000


def parse_items(bodies: list[bytes]) -> list[Item]:
    return [orjson.loads(b) for b in bodies]


def continued_conversation(conversation: Any, previous_response_id: str | None) -> str | None:
    """The conversation a request continues, checked; never together with a chain."""
    conversation_id = conversation_id_of(conversation)
    if conversation_id and previous_response_id:
        raise InvalidRequestError(
            "Mutually exclusive parameters. Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'.",
            code="mutually_exclusive_parameters",
        )
    return conversation_id


def conversation_id_of(value: Any) -> str | None:
    if value is None:
        return None
    conversation_id = value if isinstance(value, str) else value.id
    return check_id(conversation_id, "conv", "conversation")


def _check_unsupported(body: ResponseCreate, background: bool) -> None:
    if body.messages is not None:
        raise InvalidRequestError(
            "Unsupported parameter: 'messages'. In the Responses API, this parameter has "
            "moved to 'input'. Try again with the new parameter.",
            code="unsupported_parameter",
            param="messages",
        )
    if body.background and not background:
        raise InvalidRequestError(
            "Background responses are not supported here; leave 'background' out or set "
            "it to false.",
            code="unsupported_value",
            param="background",
        )
    if body.background and body.store is False:
        raise InvalidRequestError(
            "Background responses must be stored: set 'store' to true or leave it out.",
            code="invalid_value",
            param="store",
        )
    if body.prompt is not None:
        raise NotFoundError(f"Prompt with id '{body.prompt.get('id')}' not found.")


def _check_limits(body: ResponseCreate, limits: Limits) -> None:
    limits.check_max_output_tokens(body.max_output_tokens)
    limits.check_text(body.instructions, "instructions")


def _check_tools(body: ResponseCreate, limits: Limits, settings: ToolSettings) -> None:
    tools = body.tools or []
    check_tools(tools, limits, settings)
    choice = body.tool_choice
    # (namespace, name, type) of every function and custom tool, namespaced or not
    defined = {(None, t["name"], t["type"]) for t in tools if t["type"] in ("function", "custom")}
    defined |= {(t["name"], inner["name"], inner["type"]) for t in tools
              if t["type"] == "namespace" for inner in t["tools"]}  # fmt: skip
    missing = (
        isinstance(choice, FunctionToolChoice | NamedToolChoice)
        and (choice.namespace, choice.name, choice.type) not in defined
    ) or (isinstance(choice, HostedToolChoice) and all(t["type"] != choice.type for t in tools))
    if missing:
        named = getattr(choice, "name", None) or getattr(choice, "type", "")
        raise InvalidRequestError(
            f"Tool choice '{named}' not found in 'tools' parameter.",
            code="invalid_value",
            param="tool_choice",
        )


def _after_results(history: list[Item], dropped: int) -> int:
    """Never start on a tool result whose call was dropped: the model could not use it."""
    while dropped < len(history) and history[dropped].get("type") in _RESULTS:
        dropped += 1
    return dropped


Built = tuple[int, JSONDict, "CompactionPlan | None"]


async def _fit(
    body: ResponseCreate,
    route: Route,
    built: Callable[[int | None], Awaitable[Built]],
    estimated: Built,
    items: int,
) -> Built:
    """`truncation: "auto"` by the engine's own count where it counts cheaply (a
    `/tokenize` beside `/v1`): the fewest dropped items whose request fits, found by
    bisection from the estimate's answer. Elsewhere the estimate stands."""
    limit = route.model.context_length or 0
    budget = limit - (body.max_output_tokens or limit // 4)
    counted = await count_tokens(route.provider, estimated[1], cheap_only=True)
    if counted is None or (counted <= budget and estimated[0] == 0):
        return estimated
    fits = counted <= budget
    best: Built | None = estimated if fits else None
    low, high = (0, estimated[0] - 1) if fits else (estimated[0] + 1, items)
    while low <= high:
        middle = (low + high) // 2
        candidate = await built(middle)
        tokens = await count_tokens(route.provider, candidate[1], cheap_only=True)
        if tokens is None:
            break
        if tokens <= budget:
            best, high = candidate, middle - 1
        else:
            low = middle + 1
    return best or await built(items)


def _compact_threshold(body: ResponseCreate, route: Route) -> int | None:
    """The tokens past which `context_management` compacts first: its own threshold, or
    the model's context less the output's budget."""
    for entry in body.context_management or ():
        if entry.compact_threshold is not None:
            return entry.compact_threshold
        limit = route.model.context_length
        if limit:
            return limit - (body.max_output_tokens or limit // 4)
    return None


def _chat_choice(choice: Any) -> Any:
    """The request's own choice in chat form, for the kinds that do not claim it."""
    if isinstance(choice, AllowedToolsChoice):
        return choice.mode  # the tools it allows are what is offered
    if isinstance(choice, HostedToolChoice):
        return "required"  # a built-in of that type is in `tools` (checked before)
    return choice if isinstance(choice, str) else None


class TurnPreparer:
    def __init__(
        self,
        store: Store,
        conversations: ConversationService,
        models: ModelRouter,
        tool_settings: ToolSettings,
        sessions: McpSessionPool,
        compactor: Compactor,
        searcher: Any = None,
        history_cache: HistoryCache | None = None,
    ):
        self._cache = history_cache or HistoryCache()
        self._searcher = searcher
        self._store = store
        self._conversations = conversations
        self._models = models
        self._tool_settings = tool_settings
        self._sessions = sessions
        self._compactor = compactor

    def model_name(self, model: str | None) -> str:
        """The model a request names, or the configured default; a 400 without either."""
        named = model or self._models.default_model
        if not named:
            raise InvalidRequestError(
                "Missing required parameter: 'model'.",
                code="missing_required_parameter",
                param="model",
            )
        return named

    async def prepare(
        self,
        owner: str,
        body: ResponseCreate,
        local: Mapping[str, list[Item]] | None = None,
        *,
        background: bool = False,
        identity: tuple[str, int] | None = None,
    ) -> PreparedTurn:
        """`local`: the histories of responses made on this WebSocket connection, which a
        `previous_response_id` may name even when they were not stored. `background`:
        the caller runs background turns; `identity`: the id and creation time of a
        queued response that now runs."""
        _check_unsupported(body, background)
        model = self.model_name(body.model)
        conversation_id = continued_conversation(body.conversation, body.previous_response_id)
        check_include(body.include or [])
        metadata = check_metadata(body.metadata)
        _check_limits(body, self._conversations.limits)
        _check_tools(body, self._conversations.limits, self._tool_settings)
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
        # Counted before any item is looked at: validation is the costly part.
        self._conversations.limits.check_input_count(len(raw_input), "input")
        route = await self._models.resolve(model)
        input_items = await self._conversations.prepare_items(owner, raw_input, "input")
        previous = body.previous_response_id
        entry: Entry | None = None
        if local is not None and previous is not None and previous in local:
            history = local[previous]
            open_input(self._compactor.sealer, history, None)  # kept as the client sent them
        elif conversation_id is not None:
            entry = await self._conversation(owner, conversation_id)
            history = entry.items
        elif previous is not None:
            entry = await self._chain(owner, previous)
            history = entry.items
        else:
            history = []
        if conversation_id is not None:
            # The turn appends its input and at least one output item.
            self._conversations.limits.check_conversation_size(
                conversation_id, len(history), len(input_items.items) + 1, "conversation"
            )
        new_input = parse_items([item.body for item in input_items.items])
        moderated: dict[str, JSONDict] = {}
        if body.moderation is not None and mode(body.moderation, "input"):
            text = text_of(new_input)
            moderated["input"] = await moderate(self._models, body.moderation, "input", text)
        # Tools are prepared last, from what came before: an MCP server is contacted only
        # for a request that is otherwise sound.
        tools = await ToolBox.prepare(
            body.tools or [],
            PrepareContext(
                owner,
                self._sessions,
                self._tool_settings,
                history,
                new_input,
                body.tool_choice,
                searcher=self._searcher,
                include=body.include or [],
            ),
        )
        if isinstance(body.tool_choice, AllowedToolsChoice):
            try:
                tools.restrict(body.tool_choice.tools)
            except BaseException:
                await tools.close()
                raise

        converted = await self._converted(entry)
        plain = (
            converted is not None
            and not converted.compactions
            and all(item.get("type") != "compaction" for item in new_input)
        )

        def build(drop: int | None = None) -> tuple[int, JSONDict, CompactionPlan | None]:
            # What the model sees: a summary stands for the items it covers.
            if plain:  # no compaction anywhere: the views are the items themselves
                seen_history, seen_input, summary = history, new_input, None
            else:
                seen_history, seen_input, summary = self._compactor.views(history, new_input)
            if drop is None:
                dropped, kept = self._truncate(body, route, seen_history, seen_input)
            else:
                dropped = _after_results(seen_history, drop)
                kept = seen_history[dropped:]
            request = chat_request(
                body,
                route.model.id,
                kept,
                seen_input,
                tools.chat_tools(),
                tools.chat_tool_choice(_chat_choice(body.tool_choice)),
                converted if kept is history else None,
            )
            plan = self._compactor.plan(
                _compact_threshold(body, route), history, kept, summary, request
            )
            return dropped, request, plan

        self._compactor.check(new_input, "input")
        open_input(self._compactor.sealer, new_input, "input")
        # A long history takes milliseconds per thousand items to turn into messages:
        # done in a thread, the loop serves other requests meanwhile (unless it was
        # converted already and is what the model sees: no summary, nothing dropped).
        whole = not plain or (body.truncation == "auto" and bool(route.model.context_length))
        work = len(new_input) + (len(history) if whole else 0)

        async def built(drop: int | None = None) -> tuple[int, JSONDict, CompactionPlan | None]:
            if work > INLINE_ITEMS or (drop is not None and len(history) > INLINE_ITEMS):
                return await asyncio.to_thread(build, drop)
            return build(drop)

        try:
            dropped, request, plan = await built()
            if body.truncation == "auto" and route.model.context_length:
                dropped, request, plan = await _fit(
                    body, route, built, (dropped, request, plan), len(history)
                )
        except BaseException:
            await tools.close()
            raise
        return PreparedTurn(
            owner=owner,
            response_id=identity[0] if identity else new_id("resp"),
            created_at=identity[1] if identity else int(time.time()),
            body=body,
            route=route,
            conversation_id=conversation_id,
            metadata=metadata,
            input_items=input_items,
            request=request,
            store=body.store is not False,
            tools=tools,
            dropped_items=dropped,
            compaction=plan,
            compactor=self._compactor,
            moderation=moderated,
            history=history,
        )

    async def _conversation(self, owner: str, conversation_id: str) -> Entry:
        """The conversation's history: the cached one carried on by the items appended
        since, or read again (`history_cache.py`)."""
        cached = self._cache.get(owner, conversation_id)
        try:
            read = await self._store.history_since(
                owner,
                conversation_id,
                cached.next_seq if cached else 0,
                cached.deleted if cached else 0,
            )
        except ConversationMissing:
            self._cache.discard(owner, conversation_id)
            raise conversation_not_found(conversation_id) from None
        if len(read.bodies) > INLINE_ITEMS:
            fresh = await asyncio.to_thread(parse_items, read.bodies)
        else:
            fresh = parse_items(read.bodies)
        open_input(self._compactor.sealer, fresh, None)  # kept as the client sent them
        size = footprint(read.bodies)
        if cached is not None and read.since == cached.next_seq:  # only appends since
            items = [*cached.items, *fresh] if fresh else cached.items
            entry = Entry(read.next_seq, read.deleted, items, cached.size + size,
                          cached.conversion)  # fmt: skip
        else:
            entry = Entry(read.next_seq, read.deleted, fresh, size)
        self._cache.put(owner, conversation_id, entry)
        return entry

    async def _converted(self, entry: Entry | None) -> Conversion | None:
        """The entry's history as chat messages, carried on from what was converted
        before; kept in the entry for the next turn."""
        if entry is None:
            return None
        done = entry.conversion.items if entry.conversion is not None else 0
        if len(entry.items) - done > INLINE_ITEMS:
            converted = await asyncio.to_thread(convert_history, entry.items, entry.conversion)
        else:
            converted = convert_history(entry.items, entry.conversion)
        entry.conversion = converted
        return converted

    async def history(
        self, owner: str, conversation_id: str | None, previous_response_id: str | None
    ) -> list[Item]:
        if conversation_id is not None:
            return (await self._conversation(owner, conversation_id)).items
        if previous_response_id is not None:
            return (await self._chain(owner, previous_response_id)).items
        return []

    async def _chain(self, owner: str, response_id: str) -> Entry:
        """A chain's history: kept, or the kept one of the response before it carried on
        by this response's own items, while every response it covers is unchanged; else
        read whole (`history_cache.py`)."""
        try:
            kept = self._cache.get(owner, response_id)
            if kept is not None and await self._unchanged(owner, kept):
                return kept
            stored = await self._store.get_response(owner, response_id)
            before = self._cache.get(owner, stored.previous_response_id or "")
            if (
                stored.status in _SETTLED
                and before is not None
                and 0 < len(before.chain) < MAX_CHAIN
                and await self._unchanged(owner, before)
            ):
                return self._chained(owner, before, [stored])
            chain = await self._store.response_chain(owner, response_id)
        except ResponseMissing:
            raise InvalidRequestError(
                f"Previous response with id '{response_id}' not found.",
                code="previous_response_not_found",
                param="previous_response_id",
            ) from None
        return self._chained(owner, None, chain)

    async def _unchanged(self, owner: str, entry: Entry) -> bool:
        found = await self._store.responses_version(owner, entry.chain)
        return found == (len(entry.chain), entry.chain_bytes)

    def _chained(self, owner: str, before: Entry | None, chain: list[StoredResponse]) -> Entry:
        """`before`'s history (or none) and the items of `chain`'s responses, kept when
        every response is settled (a response stored again would change it)."""
        fresh: list[Item] = []
        for stored in chain:
            fresh += orjson.loads(stored.input_items)
            fresh += orjson.loads(stored.body)["output"]
        open_input(self._compactor.sealer, fresh, None)  # kept as the client sent them
        size = footprint([b for stored in chain for b in (stored.input_items, stored.body)])
        ids, chain_bytes = tuple(s.id for s in chain), sum(len(s.body) for s in chain)
        if before is None:
            entry = Entry(0, 0, fresh, size, chain=ids, chain_bytes=chain_bytes)
        else:
            entry = Entry(0, 0, [*before.items, *fresh], before.size + size, before.conversion,
                          (*before.chain, *ids), before.chain_bytes + chain_bytes)  # fmt: skip
        if all(stored.status in _SETTLED for stored in chain):
            self._cache.put(owner, entry.chain[-1], entry)
        return entry

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
        dropped = _after_results(history, dropped)
        return dropped, history[dropped:]
