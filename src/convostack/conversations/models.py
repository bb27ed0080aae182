"""Request bodies of the Conversations API.

Narrow on purpose: unknown keys are refused (`unknown_parameter`), and items stay raw
here because each is checked on its own (conversations/items.py), so that an error can
name `items[3].content[0].type` rather than a union branch.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

INCLUDABLE = (
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConversationCreate(_Body):
    items: list[Any] | None = None
    metadata: Any = None


class ConversationUpdate(_Body):
    # Required, and may be null: null clears the metadata.
    metadata: Any


class ItemsCreate(_Body):
    items: Any
