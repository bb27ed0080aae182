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
    namespace: str | None = None  # a function of a `namespace` tool


class McpToolChoice(_Strict):
    type: Literal["mcp"]
    server_label: str
    name: str | None = None


class AllowedToolsChoice(_Strict):
    """Only these of `tools` may be called, `auto`matically or one `required`ly."""

    type: Literal["allowed_tools"]
    mode: Literal["auto", "required"]
    tools: list[dict[str, Any]]


class NamedToolChoice(_Strict):
    """A custom tool by name."""

    type: Literal["custom"]
    name: str
    namespace: str | None = None  # a custom tool of a `namespace` tool


class HostedToolChoice(_Strict):
    """A built-in tool by type; `apply_patch`, `shell` and programmatic calling too."""

    type: Literal[
        "file_search", "web_search_preview", "web_search_preview_2025_03_11", "computer",
        "computer_use", "computer_use_preview", "image_generation", "code_interpreter",
        "apply_patch", "shell", "programmatic_tool_calling",
    ]  # fmt: skip


ToolChoiceObject = Annotated[
    FunctionToolChoice | McpToolChoice | AllowedToolsChoice | NamedToolChoice | HostedToolChoice,
    Field(discriminator="type"),
]
UNION_TAGS.update({"function", "mcp", "allowed_tools", "custom"})


class ContextManagement(_Strict):
    type: Literal["compaction"]
    compact_threshold: int | None = Field(None, ge=1)


class BackgroundOptions(_Strict):
    completion_window: Literal["soonest", "2h", "8h"] | None = None
    continuation_id: str | None = Field(None, max_length=512)


class ImageOptions(_Strict):
    context_compression: Literal["auto", "enabled", "disabled"] | None = None


class PromptCacheOptions(_Strict):
    comparison_response_id: str | None = None
    mode: Literal["implicit", "explicit"] | None = None
    prewarm: bool | None = None
    ttl: Literal["30m", "12h"] | None = None


class ModerationMode(_Strict):
    mode: Literal["score", "block"]


class ModerationPolicy(_Strict):
    input: ModerationMode | None = None
    output: ModerationMode | None = None


class Moderation(_Strict):
    model: str
    policy: ModerationPolicy | None = None


class AccessPrograms(_Strict):
    cyber: Literal["standard", "daybreak_blue", "daybreak_red"] | None = None


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
    # Accepted; what each does here is in docs/api.md ("Request fields").
    context_management: list[ContextManagement] | None = None
    background_options: BackgroundOptions | None = None
    image: ImageOptions | None = None
    prompt_cache_options: PromptCacheOptions | None = None
    moderation: Moderation | None = None
    access_programs: AccessPrograms | None = None
    # Chat Completions' key, refused with a hint rather than as merely unknown.
    messages: Any = None
