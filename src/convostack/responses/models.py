"""The `POST /v1/responses` request body: narrow, so a mistake is one 400 naming one field.

Input items stay raw here and are checked one by one by the Conversations item
validator (so `input[2].content[0].type` can be named); tools likewise, so that a tool
type we do not run yet gets its own clear message.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from convostack.validation import UNION_TAGS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConversationRef(_Strict):
    id: str


class StreamOptions(_Strict):
    include_obfuscation: bool | None = None


class FunctionTool(_Strict):
    type: Literal["function"]
    name: str = Field(min_length=1, max_length=128)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None
    defer_loading: bool | None = None
    output_schema: dict[str, Any] | None = None


class FunctionToolChoice(_Strict):
    type: Literal["function"]
    name: str


class McpToolChoice(_Strict):
    type: Literal["mcp"]
    server_label: str
    name: str | None = None


ToolChoiceObject = Annotated[FunctionToolChoice | McpToolChoice, Field(discriminator="type")]
UNION_TAGS.update({"function", "mcp"})


class TextFormatText(_Strict):
    type: Literal["text"]


class TextFormatJsonObject(_Strict):
    type: Literal["json_object"]


class TextFormatJsonSchema(_Strict):
    type: Literal["json_schema"]
    name: str = Field(min_length=1, max_length=64)
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


TextFormat = Annotated[
    TextFormatText | TextFormatJsonObject | TextFormatJsonSchema, Field(discriminator="type")
]
UNION_TAGS.update({"text", "json_object", "json_schema"})


class TextConfig(_Strict):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class Reasoning(_Strict):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    context: Any = None
    mode: Any = None


class ResponseCreate(_Strict):
    model: str | None = None
    input: str | list[Any] | None = None
    instructions: str | None = None
    conversation: str | ConversationRef | None = None
    previous_response_id: str | None = None
    store: bool | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    background: bool | None = None
    tools: list[Any] | None = None
    tool_choice: Literal["none", "auto", "required"] | ToolChoiceObject | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = Field(None, ge=16)
    max_tool_calls: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    top_logprobs: int | None = Field(None, ge=0, le=20)
    text: TextConfig | None = None
    reasoning: Reasoning | None = None
    metadata: Any = None
    truncation: Literal["auto", "disabled"] | None = None
    include: list[str] | None = None
    user: str | None = None
    safety_identifier: str | None = Field(None, max_length=128)
    prompt_cache_key: str | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    service_tier: (
        Literal["auto", "default", "flex", "scale", "priority", "fast", "ultrafast"] | None
    ) = None
    prompt: dict[str, Any] | None = None
    # Chat Completions' key, refused with a hint rather than as merely unknown.
    messages: Any = None
