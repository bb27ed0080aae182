"""`moderation` on a response: its input and output checked by a moderation model that a
provider serves (`POST /moderations` on an OpenAI-style engine). `block` stops a flagged
input before any model call (a 400) and withholds a flagged output (the response ends
`incomplete`, reason `content_filter`, and nothing is appended); `score` only records the
results on the response. A moderation that cannot be had fails closed under `block` (its
error is the request's) and is recorded as an error under `score`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from convostack.errors import APIError, InvalidRequestError
from convostack.providers.base import JSONDict, UnsupportedByProvider
from convostack.providers.router import ModelRouter
from convostack.responses.models import Moderation

Item = dict[str, object]


@runtime_checkable
class Moderator(Protocol):
    async def moderations(self, request: JSONDict) -> JSONDict:
        """An OpenAI `/moderations` answer for `{"model", "input"}`."""
        ...


def mode(spec: Moderation | None, side: str) -> str | None:
    """`block`, `score`, or None when this side is not moderated (no policy: score both)."""
    if spec is None:
        return None
    if spec.policy is None:
        return "score"
    chosen = getattr(spec.policy, side)
    return chosen.mode if chosen is not None else None


async def moderate(router: ModelRouter, spec: Moderation, side: str, text: str) -> JSONDict:
    """The side's moderation result; raises under `block` when flagged or unavailable."""
    blocking = mode(spec, side) == "block"
    try:
        route = await router.resolve(spec.model)
        if not isinstance(route.provider, Moderator):
            raise UnsupportedByProvider(
                f"Model '{spec.model}' cannot moderate: its provider has no moderations "
                "endpoint.", code="moderation_unavailable", param="moderation.model",
            )  # fmt: skip
        answer = await route.provider.moderations({"model": route.model.id, "input": text})
    except APIError as exc:
        if blocking:
            raise
        return {"type": "error", "code": exc.code or "moderation_error", "message": exc.message}
    found = (answer.get("results") or [{}])[0]
    result: JSONDict = {
        "type": "moderation_result",
        "flagged": bool(found.get("flagged")),
        "categories": dict(found.get("categories") or {}),
        "category_scores": dict(found.get("category_scores") or {}),
        "category_applied_input_types": dict(found.get("category_applied_input_types") or {}),
        "model": spec.model,
    }
    if blocking and result["flagged"] and side == "input":
        flagged = sorted(k for k, v in result["categories"].items() if v)
        raise InvalidRequestError(
            f"The input was flagged by moderation ({', '.join(flagged) or 'flagged'}) and "
            "the response was not made (moderation.policy.input.mode is block).",
            code="moderation_blocked", param="input",
        )  # fmt: skip
    return result


def text_of(items: Iterable[dict[str, object]]) -> str:
    """The text a moderation model reads of some items: their messages' text parts."""
    texts: list[str] = []
    for item in items:
        content = item.get("content")
        if item.get("type", "message") != "message":
            continue
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [str(p.get("text", "")) for p in content
                      if isinstance(p, dict) and "text" in p]  # fmt: skip
    return "\n".join(texts)
