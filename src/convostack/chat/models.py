"""Request bodies of Chat Completions and Embeddings.

Narrow on purpose, and open: only what the server itself acts on is checked (`model`,
`messages`, `stream`, `stream_options.include_usage`, `encoding_format`) and what the
server's limits bound (`max_tokens`, `max_completion_tokens`, `n`, the text of each
message, the number of `tools`); every other key goes upstream unchanged, because the
engine behind the provider knows its own parameters far better than a copy of them here
would.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from convostack.limits import Limits
from convostack.providers.base import JSONDict


class _OpenBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    def _extra(self) -> JSONDict:
        return dict(self.__pydantic_extra__ or {})


class StreamOptions(_OpenBody):
    include_usage: StrictBool | None = None


class ChatCompletionCreate(_OpenBody):
    model: str = Field(min_length=1)
    messages: list[dict[str, Any]] = Field(min_length=1)
    stream: StrictBool | None = None
    stream_options: StreamOptions | None = None

    def check_limits(self, limits: Limits) -> None:
        """The limits of the Responses API, on the keys that mean the same here. Values
        of another type are left to the upstream, which refuses them itself."""
        extra = self.__pydantic_extra__ or {}
        for param in ("max_tokens", "max_completion_tokens"):
            limits.check_max_output_tokens(_integer(extra.get(param)), param)
        limits.check_choices(_integer(extra.get("n")))
        tools = extra.get("tools")
        if isinstance(tools, list):
            limits.check_tool_count(len(tools))
        for n, message in enumerate(self.messages):
            limits.check_item_text(message, f"messages[{n}]")

    @property
    def wants_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def upstream_body(self, model: str) -> JSONDict:
        """The body for the provider, under its own id for the model."""
        body = self._extra()
        body["model"] = model
        body["messages"] = self.messages
        if self.stream is not None:
            body["stream"] = self.stream
        options = (
            self.stream_options.model_dump(exclude_unset=True) if self.stream_options else None
        )
        if self.stream:
            # Always asked for (the provider protocol says so): usage is what a stream
            # costs, whether or not this client wants to see it.
            options = {**(options or {}), "include_usage": True}
        if options is not None:
            body["stream_options"] = options
        return body


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class EmbeddingCreate(_OpenBody):
    model: str = Field(min_length=1)
    input: Any
    encoding_format: Literal["float", "base64"] | None = None

    def upstream_body(self, model: str) -> JSONDict:
        body = self._extra()
        body["model"] = model
        body["input"] = self.input
        if self.encoding_format is not None:
            body["encoding_format"] = self.encoding_format
        return body
