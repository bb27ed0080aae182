"""A test's view of the fake upstream: what it received, and a way to forget it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2
import openai

FAKE_MODEL = "fake-model"


@dataclass
class Upstream:
    url: str  # ends in /v1

    def requests(self, path: str = "/v1/chat/completions") -> list[dict[str, Any]]:
        root = self.url.removesuffix("/v1")
        records: list[dict[str, Any]] = httpx2.get(root + "/fake/requests").json()["data"]
        return [r for r in records if r["path"] == path]

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests()]

    def last_messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.chat_requests()[-1]["messages"]
        return messages

    def last_texts(self) -> list[str]:
        """The text of each message of the last chat request."""
        return [text_of(m["content"]) for m in self.last_messages()]

    def reset(self) -> None:
        httpx2.post(self.url.removesuffix("/v1") + "/fake/reset").raise_for_status()


def text_of(content: Any) -> str:
    """The text of an item's or a chat message's content (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    return "".join(part["text"] if isinstance(part, dict) else part.text for part in content or [])


def listed_texts(client: openai.OpenAI, conversation_id: str) -> list[str]:
    """The text of each item of a conversation (up to 100), oldest first."""
    items = client.conversations.items.list(conversation_id, order="asc", limit=100)
    return [text_of(getattr(item, "content", "")) for item in items]
