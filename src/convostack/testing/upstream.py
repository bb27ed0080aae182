"""A test's view of the fake upstream: what it received, and a way to forget it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2

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

    def reset(self) -> None:
        httpx2.post(self.url.removesuffix("/v1") + "/fake/reset").raise_for_status()
