"""Reasoning that survives `store: false`: a stateless caller keeps the chain of thought.

With `include: ["reasoning.encrypted_content"]`, every reasoning item of the output gets
`encrypted_content`: its text sealed (`sealing.py`, purpose `reasoning`) under the
server's key. Sent back as input, the item is opened and its text, not whatever the
caller put in `content`, is what the model sees (`context.py` gives it to the next
assistant message as `reasoning_content`, the field engines' chat templates read). A
sealed text that does not open (changed, or another server's key) is a 400 naming the
item's `encrypted_content`.
"""

from __future__ import annotations

from typing import Any

from convostack.errors import InvalidRequestError
from convostack.providers.base import JSONDict
from convostack.responses.sealing import SealBroken, Sealer

PURPOSE = "reasoning"
INCLUDE = "reasoning.encrypted_content"


def reasoning_text(item: dict[str, Any]) -> str:
    parts = item.get("content") or []
    return "".join(str(p.get("text", "")) for p in parts if p.get("type") == "reasoning_text")


def seal(sealer: Sealer, item: JSONDict) -> None:
    item["encrypted_content"] = sealer.seal({"text": reasoning_text(item)}, PURPOSE)


def open_input(sealer: Sealer, items: list[dict[str, Any]], param: str | None) -> None:
    """Give each sealed reasoning item of `items` (the model's view) its sealed text.
    `param` names the input for the 400 of a broken seal; None (the history, which holds
    what a client sent earlier, kept as it was sent) leaves such an item without text."""
    for n, item in enumerate(items):
        sealed = item.get("encrypted_content")
        if item.get("type") != "reasoning" or sealed is None:
            continue
        where = f"{param}[{n}].encrypted_content"
        try:
            payload = sealer.open(str(sealed), PURPOSE)
        except SealBroken as exc:
            if param is None:
                continue
            raise InvalidRequestError(
                f"Invalid '{where}': this reasoning item's encrypted_content was {exc}. Send "
                "reasoning items back exactly as this server made them, or leave "
                "encrypted_content out.",
                code="invalid_encrypted_content",
                param=where,
            ) from None
        item["content"] = [{"type": "reasoning_text", "text": str(payload.get("text", ""))}]
