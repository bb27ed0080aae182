"""The Responses service: runs a prepared turn and keeps what it produced.

A turn writes once, at its end, in one transaction: the input items and every output
item appended to the conversation as one block, and the response stored. Nothing is
written before, so a turn that fails or is abandoned leaves the conversation exactly as
it was. With `store: false` the conversation (itself stored) still gets the turn, but
the response object is not kept: it cannot be retrieved or chained to afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import orjson

from convostack.conversations.service import ConversationService, check_include, quota_exceeded
from convostack.errors import (
    APIError,
    NotFoundError,
    RateLimitError,
    conversation_not_found,
    invalid_value,
    store_unavailable_message,
)
from convostack.ids import MAX_ID_LENGTH, check_id
from convostack.limits import DEFAULT_HISTORY_CACHE_BYTES
from convostack.observability.hooks import NOT_OBSERVED, Observer
from convostack.providers.base import JSONDict
from convostack.providers.router import ModelRouter
from convostack.responses.compact import CompactService
from convostack.responses.compaction import Compactor
from convostack.responses.history_cache import HistoryCache
from convostack.responses.models import ResponseCreate
from convostack.responses.moderation import mode, moderate, text_of
from convostack.responses.output import Event, usage_object
from convostack.responses.sealing import Sealer
from convostack.responses.tools.loop import ToolLoop
from convostack.responses.tools.mcp_pool import McpSessionPool
from convostack.responses.tools.settings import ToolSettings
from convostack.responses.turn import PreparedTurn, TurnPreparer
from convostack.storage.base import (
    ConversationFull,
    ConversationMissing,
    CursorMissing,
    DuplicateItemId,
    NewItem,
    Order,
    ResponseMissing,
    ResponsePage,
    Store,
    StoredResponse,
    StoreUnavailable,
    Turn,
)
from convostack.storage.quotas import QuotaExceeded

log = logging.getLogger(__name__)


class ClaimLost(Exception):
    """A background turn's row was cancelled, deleted or taken again while it ran: the
    turn writes nothing."""


def response_not_found(response_id: str) -> NotFoundError:
    return NotFoundError(f"Response with id '{response_id}' not found.")


def error_object(exc: BaseException) -> JSONDict:
    """The `error` of a failed response, from whatever made it fail."""
    if isinstance(exc, APIError):
        code = "rate_limit_exceeded" if isinstance(exc, RateLimitError) else "server_error"
        return {"code": code, "message": exc.message}
    if isinstance(exc, StoreUnavailable):
        return {"code": "server_error", "message": store_unavailable_message()}
    return {
        "code": "server_error",
        "message": "The server had an error while processing the response.",
    }


class ResponseService:
    def __init__(
        self,
        store: Store,
        conversations: ConversationService,
        models: ModelRouter,
        tool_settings: ToolSettings | None = None,
        compactor: Compactor | None = None,
        observer: Observer = NOT_OBSERVED,
        searcher: Any = None,
        history_cache_bytes: int = DEFAULT_HISTORY_CACHE_BYTES,
    ):
        self._store = store
        self._models = models
        self._observer = observer
        self._limits = conversations.limits
        self._tool_settings = tool_settings or ToolSettings()
        settings = self._tool_settings
        self.mcp_sessions = McpSessionPool(
            settings.tool_connect_timeout_seconds, settings.mcp_session_idle_seconds
        )
        # Without a configured one (tests that build a service by hand), a key for this
        # process alone: its compactions open only here.
        self._compactor = compactor or Compactor(Sealer(secrets.token_bytes(32)))
        self._preparer = TurnPreparer(
            store,
            conversations,
            models,
            self._tool_settings,
            self.mcp_sessions,
            self._compactor,
            searcher,
            HistoryCache(history_cache_bytes),
        )
        self.compaction = CompactService(self._preparer, conversations, models, self._compactor)

    async def prepare(
        self,
        owner: str,
        body: ResponseCreate,
        local: Mapping[str, list[JSONDict]] | None = None,
        *,
        background: bool = False,
        identity: tuple[str, int] | None = None,
    ) -> PreparedTurn:
        return await self._preparer.prepare(
            owner, body, local, background=background, identity=identity
        )

    @property
    def sealer(self) -> Sealer:
        return self._compactor.sealer

    # -- running a turn -----------------------------------------------------------

    async def run(self, turn: PreparedTurn) -> JSONDict:
        """A non-streaming turn: the final Response, already kept."""
        loop = self._loop(turn)
        try:
            async for _ in loop.events(streaming=False):
                pass
        except Exception as exc:
            await self.keep_failure(turn, exc)
            raise
        finally:
            await turn.tools.close()
        return await self.finish(turn, loop)

    async def stream(
        self, turn: PreparedTurn, generate: bool = True
    ) -> AsyncGenerator[Event, None]:
        """A streaming turn as Responses events (without sequence numbers). Without
        `generate` (a WebSocket prewarm) the model is not called: the response keeps its
        input and has no output, for a later turn to continue from."""
        yield {"type": "response.created", "response": turn.envelope("in_progress", [])}
        yield {"type": "response.in_progress", "response": turn.envelope("in_progress", [])}
        loop = self._loop(turn)
        try:
            if generate:
                async for event in loop.events(streaming=True):
                    yield event
            final = await self.finish(turn, loop)
        except ClaimLost:
            return  # a background turn cancelled as it ended: nothing to keep or send
        except Exception as exc:
            failed = await self.keep_failure(turn, exc, loop.output)
            yield {"type": "response.failed", "response": failed}
            return
        except (asyncio.CancelledError, GeneratorExit):
            # The client left (event_stream.py cancels the stream, or closes this
            # generator): nothing is appended; the response is kept as cancelled,
            # shielded so that the cancellation cannot cut that short.
            self._observer.turn_ended(turn.route.public_id, "cancelled")
            await asyncio.shield(self._keep(turn, turn.envelope("cancelled", loop.output)))
            raise
        finally:
            await turn.tools.close()
        terminal = (
            "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        )
        yield {"type": terminal, "response": final}

    def _loop(self, turn: PreparedTurn) -> ToolLoop:
        # A turn's output is bounded like any item's text (nothing is kept past it).
        return ToolLoop(turn, self._tool_settings, self._limits.max_item_text_chars, self._observer)

    async def finish(self, turn: PreparedTurn, loop: ToolLoop) -> JSONDict:
        """Keep a turn the model finished: append to the conversation, store the response."""
        withheld = await self._moderate_output(turn, loop)
        reason = "content_filter" if withheld else loop.incomplete_reason
        status = "incomplete" if reason else "completed"
        response = turn.envelope(
            status,
            [] if withheld else loop.output,
            usage=usage_object(loop.usage),
            incomplete_reason=reason,
            completed_at=int(time.time()) if status == "completed" else None,
        )
        if turn.claim is not None and not await turn.claim.commit():
            raise ClaimLost(turn.response_id)
        if withheld:  # kept as a response, but nothing of the turn enters the conversation
            await self._keep(turn, response)
            return response
        output_items = [
            NewItem(item["id"], item["type"], orjson.dumps(item), fresh=True)
            for item in loop.output
        ]
        stored = self.stored(turn, response) if turn.store else None
        items = [*turn.input_items.items, *output_items]
        try:
            await self._store.save_turn(
                turn.owner,
                Turn(turn.conversation_id, items, stored),
                max_items=self._limits.max_items_per_conversation,
            )
        except ConversationMissing:
            raise conversation_not_found(turn.conversation_id or "") from None
        except ConversationFull as exc:  # concurrent turns filled it since the turn began
            raise self._limits.conversation_too_long(
                exc.conversation_id, exc.held, len(items), "conversation"
            ) from None
        except QuotaExceeded as exc:
            raise quota_exceeded(exc) from None
        except DuplicateItemId as exc:
            param = turn.input_items.param_of(exc.item_id)
            raise invalid_value(
                f"{param}.id" if param else "input",
                f"An item with id '{exc.item_id}' already exists in conversation "
                f"'{turn.conversation_id}'. Leave 'id' out to get a new one.",
            ) from None
        self._observer.turn_ended(turn.route.public_id, status)
        return response

    async def _moderate_output(self, turn: PreparedTurn, loop: ToolLoop) -> bool:
        """Moderate the output where the request asks; True when `block` withholds it."""
        spec = turn.body.moderation
        if spec is None or mode(spec, "output") is None:
            return False
        result = await moderate(self._models, spec, "output", text_of(loop.output))
        turn.moderation["output"] = result
        return mode(spec, "output") == "block" and bool(result.get("flagged"))

    async def keep_failure(
        self, turn: PreparedTurn, exc: BaseException, output: list[JSONDict] | None = None
    ) -> JSONDict:
        """Store a failed response (never touching the conversation) and return it."""
        if isinstance(exc, StoreUnavailable):
            log.warning("turn %s not saved: store unavailable: %s", turn.response_id, exc)
        elif not isinstance(exc, APIError):
            log.exception("turn %s failed", turn.response_id, exc_info=exc)
        response = turn.envelope("failed", output or [], error=error_object(exc))
        self._observer.turn_ended(turn.route.public_id, "failed")
        await self._keep(turn, response)
        return response

    async def _keep(self, turn: PreparedTurn, response: JSONDict) -> None:
        """Store a response that did not finish, never touching the conversation."""
        if turn.claim is not None:
            await turn.claim.settle(response)
            return
        if not turn.store:
            return
        try:
            await self._store.save_turn(turn.owner, Turn(None, [], self.stored(turn, response)))
        except StoreUnavailable as unavailable:
            log.warning("%s response %s not kept: %s", response["status"], turn.response_id,
                        unavailable)  # fmt: skip
        except Exception:
            log.exception("could not store %s response %s", response["status"], turn.response_id)

    @staticmethod
    def stored(turn: PreparedTurn, response: JSONDict) -> StoredResponse:
        return StoredResponse(
            id=turn.response_id,
            created_at=turn.created_at,
            model=turn.route.public_id,
            status=response["status"],
            conversation_id=turn.conversation_id,
            previous_response_id=turn.body.previous_response_id,
            body=orjson.dumps(response),
            input_items=b"[" + b",".join(i.body for i in turn.input_items.items) + b"]",
        )

    # -- stored responses -----------------------------------------------------------

    async def retrieve(self, owner: str, response_id: str, include: list[str]) -> bytes:
        check_include(include)
        return (await self.get(owner, response_id)).body

    async def get(self, owner: str, response_id: str) -> StoredResponse:
        check_id(response_id, "resp", "response_id")
        try:
            return await self._store.get_response(owner, response_id)
        except ResponseMissing:
            raise response_not_found(response_id) from None

    async def delete(self, owner: str, response_id: str) -> JSONDict:
        check_id(response_id, "resp", "response_id")
        try:
            await self._store.delete_response(owner, response_id)
        except ResponseMissing:
            raise response_not_found(response_id) from None
        return {"id": response_id, "object": "response.deleted", "deleted": True}

    async def input_items(
        self, owner: str, response_id: str, *, after: str | None, limit: int, order: Order
    ) -> tuple[list[bytes], list[str], bool]:
        stored = await self.get(owner, response_id)
        items: list[JSONDict] = orjson.loads(stored.input_items)
        if order == "desc":
            items.reverse()
        ids = [item["id"] for item in items]
        start = 0
        if after is not None:
            if after not in ids:
                raise invalid_value(
                    "after",
                    f"Invalid 'after': no input item with id '{after[:MAX_ID_LENGTH]}' in "
                    f"response '{response_id}'.",
                )
            start = ids.index(after) + 1
        page = items[start : start + limit]
        return (
            [orjson.dumps(i) for i in page],
            ids[start : start + limit],
            start + limit < len(items),
        )

    async def list(
        self, owner: str, *, after: str | None, limit: int, order: Order, model: str | None
    ) -> ResponsePage:
        try:
            return await self._store.list_responses(
                owner, after=after, limit=limit, order=order, model=model
            )
        except CursorMissing:
            raise invalid_value(
                "after", f"Invalid 'after': no response with id '{(after or '')[:MAX_ID_LENGTH]}'."
            ) from None
