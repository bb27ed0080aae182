"""Input items: validation against the wire union, and normalisation into stored items.

The hot item types (messages, function calls and their outputs, item references) have
narrow models of our own, which reject unknown keys and name the one bad field. Every
other item type in the `openai` package's `ResponseInputItemParam` union is checked
against that package's own TypedDict for it, so the whole union is accepted without
hand-copying thirty shapes. What is stored is the caller's JSON, verbatim, plus the
normalisation the wire reference asks for: `type`, a server id with the type's prefix,
`status: "completed"` where the type has a status, and string content turned into one
content part.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from convostack.errors import array_too_long, array_too_short, invalid_type, invalid_value
from convostack.ids import ITEM_ID_PREFIXES, MAX_ID_LENGTH, new_item_id
from convostack.validation import UNION_TAGS, to_api_error

Item = dict[str, Any]

MAX_ITEMS_PER_CALL = 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class InputTextPart(_Strict):
    type: Literal["input_text"]
    text: str
    # Where OpenAI may write a prompt cache entry; accepted and kept (engines cache by
    # prefix on their own).
    prompt_cache_breakpoint: dict[str, Any] | None = None


class InputImagePart(_Strict):
    type: Literal["input_image"]
    detail: Literal["low", "high", "auto", "original"] = "auto"
    image_url: str | None = None
    file_id: str | None = None


class InputFilePart(_Strict):
    type: Literal["input_file"]
    file_id: str | None = None
    file_url: str | None = None
    file_data: str | None = None
    filename: str | None = None
    detail: Literal["low", "high", "auto", "original"] | None = None


class OutputTextPart(_Strict):
    type: Literal["output_text"]
    text: str
    annotations: list[dict[str, Any]] = Field(default_factory=list)
    logprobs: list[dict[str, Any]] | None = None


class RefusalPart(_Strict):
    type: Literal["refusal"]
    refusal: str


InputPart = Annotated[InputTextPart | InputImagePart | InputFilePart, Field(discriminator="type")]
OutputPart = Annotated[OutputTextPart | RefusalPart, Field(discriminator="type")]
UNION_TAGS.update({"input_text", "input_image", "input_file", "output_text", "refusal"})

Status = Literal["in_progress", "completed", "incomplete"]


class InputMessage(_Strict):
    """A user, system or developer message, short form or full."""

    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer"]
    content: str | list[InputPart]
    id: str | None = None
    status: Status | None = None


class AssistantMessage(_Strict):
    """An assistant message: short form, or an earlier output message sent back."""

    type: Literal["message"] = "message"
    role: Literal["assistant"]
    content: str | list[OutputPart]
    id: str | None = None
    status: Status | None = None
    phase: Literal["commentary", "final_answer"] | None = None


class Caller(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["direct", "program"]
    caller_id: str | None = None


class FunctionCall(_Strict):
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    id: str | None = None
    status: Status | None = None
    namespace: str | None = None
    caller: Caller | None = None


class FunctionCallOutput(_Strict):
    type: Literal["function_call_output"]
    call_id: str
    output: str | list[InputPart]
    id: str | None = None
    status: Status | None = None
    name: str | None = None
    namespace: str | None = None
    caller: Caller | None = None


class ItemReference(_Strict):
    type: Literal["item_reference"] = "item_reference"
    id: str


_MESSAGE_ROLES: dict[str, TypeAdapter[Any]] = {
    "user": TypeAdapter(InputMessage),
    "system": TypeAdapter(InputMessage),
    "developer": TypeAdapter(InputMessage),
    "assistant": TypeAdapter(AssistantMessage),
}


@functools.cache
def _typed_dict_adapters() -> tuple[dict[str, TypeAdapter[Any]], frozenset[str]]:
    """One adapter per `type` of the openai package's input item union, and which have a
    status. Built on first need: importing the `openai` package costs about half a
    second, which start-up should not pay for items it may never see."""
    from openai.types.responses.response_input_item_param import ResponseInputItemParam

    adapters: dict[str, TypeAdapter[Any]] = {}
    with_status: set[str] = set()
    for variant in typing.get_args(ResponseInputItemParam):
        hints = typing.get_type_hints(variant)
        type_hint = hints.get("type")
        if type_hint is None:
            continue
        for literal in _literal_strings(type_hint):
            adapters[literal] = TypeAdapter(variant)
            if "status" in hints:
                with_status.add(literal)
    for ours in _HAND_WRITTEN:  # dispatched to our own models
        adapters.pop(ours, None)
    return adapters, frozenset(with_status)


def _literal_strings(hint: Any) -> list[str]:
    """The string values of a Literal, looking through Required[...] and Optional[...]."""
    if typing.get_origin(hint) is Literal:
        return [v for v in typing.get_args(hint) if isinstance(v, str)]
    return [s for arg in typing.get_args(hint) for s in _literal_strings(arg)]


_HAND_WRITTEN: dict[str, TypeAdapter[Any]] = {
    "function_call": TypeAdapter(FunctionCall),
    "function_call_output": TypeAdapter(FunctionCallOutput),
    "item_reference": TypeAdapter(ItemReference),
}
_HAND_WRITTEN_WITH_STATUS = frozenset({"message", "function_call", "function_call_output"})


def _adapter(kind: str) -> TypeAdapter[Any] | None:
    return _HAND_WRITTEN.get(kind) or _typed_dict_adapters()[0].get(kind)


def _has_status(kind: str) -> bool:
    return kind in _HAND_WRITTEN_WITH_STATUS or kind in _typed_dict_adapters()[1]


def item_types() -> frozenset[str]:
    """Every item type accepted on input; `message` is dispatched on role."""
    return frozenset({"message", *_HAND_WRITTEN, *_typed_dict_adapters()[0]})


_TEXT_PART = {"user": "input_text", "system": "input_text", "developer": "input_text"}


def item_type(raw: Item) -> str:
    """The item's type: explicit, or implied (a `role` means a message, a bare id a reference)."""
    explicit = raw.get("type")
    if explicit is not None:
        return explicit if isinstance(explicit, str) else ""
    if "role" in raw:
        return "message"
    return "item_reference" if "id" in raw else ""


def validate_item(raw: Any, param: str) -> str:
    """Check one input item against its type's model; return its type."""
    if not isinstance(raw, dict):
        raise invalid_type(param, "an object", raw)
    kind = item_type(raw)
    if kind == "message":
        role = raw.get("role")
        adapter = _MESSAGE_ROLES.get(role) if isinstance(role, str) else None
        if adapter is None:
            raise invalid_value(
                f"{param}.role",
                f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', "
                "'system' and 'developer'.",
            )
    else:
        found = _adapter(kind)
        if found is None:
            raise invalid_value(
                f"{param}.type",
                f"Invalid value: '{raw.get('type')}'. Supported values are: "
                + ", ".join(f"'{t}'" for t in sorted(item_types()))
                + ".",
            )
        adapter = found
    try:
        adapter.validate_python(_with_defaults(raw, kind))
    except ValidationError as exc:
        raise to_api_error(exc, prefix=param) from None
    _check_client_id(raw, kind, param)
    return kind


def _with_defaults(raw: Item, kind: str) -> Item:
    # Some of the openai TypedDicts require `id` or `status`, which we fill in on store
    # anyway; check the item as it will be stored, not as the caller abbreviated it.
    if kind in _HAND_WRITTEN or (raw.get("id") is not None and raw.get("status") is not None):
        return raw
    filled = dict(raw)
    if filled.get("id") is None:
        filled["id"] = "placeholder"
    if _has_status(kind) and filled.get("status") is None:
        filled["status"] = "completed"
    return filled


def _check_client_id(raw: Item, kind: str, param: str) -> None:
    item_id = raw.get("id")
    if item_id is None or kind == "item_reference":
        return
    prefix = ITEM_ID_PREFIXES.get(kind)
    if prefix and (not item_id.startswith(prefix + "_") or len(item_id) > MAX_ID_LENGTH):
        raise invalid_value(
            f"{param}.id",
            f"Invalid '{param}.id': '{item_id[:MAX_ID_LENGTH]}'. Expected an ID that begins "
            f"with '{prefix}'.",
        )
    # An id must also work as a URL path segment, or the item could never be retrieved or
    # deleted: a '/' (even encoded as %2F) splits the segment.
    if "/" in item_id or len(item_id) > MAX_ID_LENGTH:
        raise invalid_value(
            f"{param}.id",
            f"Invalid '{param}.id': '{item_id[:MAX_ID_LENGTH]}'. An item ID has at most "
            f"{MAX_ID_LENGTH} characters and no '/'.",
        )


def _normalise_parts(parts: list[Item]) -> list[Item]:
    out = []
    for part in parts:
        kind = part.get("type")
        if kind == "output_text" and "annotations" not in part:
            part = {**part, "annotations": []}
        elif kind == "input_image" and part.get("detail") is None:
            part = {**part, "detail": "auto"}
        out.append(part)
    return out


def normalise_item(raw: Item, kind: str, id_factory: Callable[[str], str] = new_item_id) -> Item:
    """The stored form of a validated item (never an item reference: resolve those first)."""
    item = dict(raw)
    item["type"] = kind
    if item.get("id") is None:
        item["id"] = id_factory(kind)
    if _has_status(kind) and item.get("status") is None:
        item["status"] = "completed"
    if kind == "message":
        content = item["content"]
        if isinstance(content, str):
            part_type = _TEXT_PART.get(item["role"], "output_text")
            part: Item = {"type": part_type, "text": content}
            if part_type == "output_text":  # as our own output has it
                part["annotations"] = []
                part["logprobs"] = []
            item["content"] = [part]
        else:
            item["content"] = _normalise_parts(content)
    elif kind == "function_call_output" and isinstance(item.get("output"), list):
        item["output"] = _normalise_parts(item["output"])
    return item


def check_item_count(items: Any, param: str, *, minimum: int) -> list[Any]:
    if not isinstance(items, list):
        raise invalid_type(param, "an array of items", items)
    if len(items) > MAX_ITEMS_PER_CALL:
        raise array_too_long(param, MAX_ITEMS_PER_CALL, len(items))
    if len(items) < minimum:
        raise array_too_short(param, minimum, len(items))
    return items
