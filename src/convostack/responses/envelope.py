"""The Response object: every field the `openai` client's `Response` type has, echoing
the request where the reference says so."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from convostack.providers.base import JSONDict
from convostack.responses.models import AllowedToolsChoice, ResponseCreate
from convostack.responses.tools import echo_tools


def _tool_choice(body: ResponseCreate) -> Any:
    choice = body.tool_choice
    if isinstance(choice, BaseModel):
        return choice.model_dump(exclude_none=isinstance(choice, AllowedToolsChoice))
    return choice or "auto"


def _text(body: ResponseCreate) -> JSONDict:
    text: JSONDict = {"format": {"type": "text"}, "verbosity": "medium"}
    if body.text is not None:
        if body.text.format is not None:
            text["format"] = body.text.format.model_dump(by_alias=True, exclude_none=True)
        if body.text.verbosity is not None:
            text["verbosity"] = body.text.verbosity
    return text


def response_object(
    *,
    response_id: str,
    created_at: int,
    body: ResponseCreate,
    model: str,
    metadata: dict[str, str],
    conversation_id: str | None,
    status: str,
    output: list[JSONDict],
    usage: JSONDict | None = None,
    error: JSONDict | None = None,
    incomplete_reason: str | None = None,
    completed_at: int | None = None,
) -> JSONDict:
    reasoning = body.reasoning.model_dump(exclude_none=True) if body.reasoning else {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "completed_at": completed_at,
        "background": bool(body.background),
        "model": model,
        "output": output,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": body.instructions,
        "metadata": metadata,
        "parallel_tool_calls": True
        if body.parallel_tool_calls is None
        else body.parallel_tool_calls,
        "tool_choice": _tool_choice(body),
        "tools": echo_tools(body.tools or []),
        "temperature": 1.0 if body.temperature is None else body.temperature,
        "top_p": 1.0 if body.top_p is None else body.top_p,
        "top_logprobs": body.top_logprobs or 0,
        "max_output_tokens": body.max_output_tokens,
        "max_tool_calls": body.max_tool_calls,
        "conversation": {"id": conversation_id} if conversation_id else None,
        "previous_response_id": body.previous_response_id,
        "prompt": None,
        "prompt_cache_key": body.prompt_cache_key,
        "prompt_cache_retention": body.prompt_cache_retention,
        "safety_identifier": body.safety_identifier,
        "user": body.user,
        "service_tier": "default",
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "text": _text(body),
        "truncation": body.truncation or "disabled",
        "usage": usage,
    }
