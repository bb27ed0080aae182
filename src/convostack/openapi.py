"""The OpenAPI document, generated from the same pydantic models the server uses.

Request bodies come from our narrow request models; responses from the `openai`
package's models, which are what the server sends. Built once, on first request.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import orjson
from openai.types import CreateEmbeddingResponse, Model
from openai.types.chat import ChatCompletion
from openai.types.conversations import (
    Conversation,
    ConversationDeletedResource,
    ConversationItem,
    ConversationItemList,
)
from openai.types.responses import Response, ResponseItemList
from openai.types.responses.response_input_item_param import ResponseInputItemParam
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from convostack import __version__
from convostack.auth import OPEN_PATHS
from convostack.chat.models import ChatCompletionCreate, EmbeddingCreate
from convostack.conversations.models import (
    INCLUDABLE,
    ConversationCreate,
    ConversationUpdate,
    ItemsCreate,
)
from convostack.responses.models import ResponseCreate

REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Query:
    name: str
    schema: dict[str, Any]
    description: str = ""
    style: str | None = None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    response: Any
    body: type[BaseModel] | None = None
    body_items: bool = False
    query: tuple[Query, ...] = field(default=())


_INCLUDE = Query(
    "include", {"type": "array", "items": {"type": "string", "enum": list(INCLUDABLE)}}
)
_LIST_QUERY = (
    Query("after", {"type": "string"}, "Return items after this item id."),
    Query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
    Query("order", {"type": "string", "enum": ["asc", "desc"], "default": "desc"}),
    _INCLUDE,
)
# Written `metadata[KEY]=VALUE`, once per key: OpenAPI's deepObject style.
_METADATA_FILTER = Query(
    "metadata",
    {"type": "object", "additionalProperties": {"type": "string"}},
    "Keep conversations whose metadata holds every KEY with its VALUE.",
    style="deepObject",
)
_CONV = "/v1/conversations/{conversation_id}"
_RESP = "/v1/responses/{response_id}"

OPERATIONS = (
    Operation("get", "/v1/health", "health", "Liveness check.", None),
    Operation(
        "post", "/v1/conversations", "createConversation", "Create a conversation.",
        Conversation, ConversationCreate, body_items=True,
    ),
    Operation(
        "get", "/v1/conversations", "listConversations",
        "List the caller's conversations, newest first by default (an extension: "
        "OpenAI has no such route).",
        None, query=(*_LIST_QUERY[:3], _METADATA_FILTER),
    ),
    Operation("get", _CONV, "getConversation", "Retrieve a conversation.", Conversation),
    Operation(
        "post", _CONV, "updateConversation", "Replace a conversation's metadata.",
        Conversation, ConversationUpdate,
    ),
    Operation(
        "delete", _CONV, "deleteConversation", "Delete a conversation and its items.",
        ConversationDeletedResource,
    ),
    Operation(
        "post", _CONV + "/items", "createConversationItems", "Append 1 to 20 items.",
        ConversationItemList, ItemsCreate, body_items=True, query=(_INCLUDE,),
    ),
    Operation(
        "get", _CONV + "/items", "listConversationItems", "List items, one page at a time.",
        ConversationItemList, query=_LIST_QUERY,
    ),
    Operation(
        "get", _CONV + "/items/{item_id}", "getConversationItem", "Retrieve one item.",
        ConversationItem, query=(_INCLUDE,),
    ),
    Operation(
        "delete", _CONV + "/items/{item_id}", "deleteConversationItem",
        "Delete one item; returns the conversation.", Conversation,
    ),
    Operation(
        "post", "/v1/responses", "createResponse",
        "Run a turn (on a conversation or a response chain); streams with stream=true.",
        Response, ResponseCreate,
    ),
    Operation(
        "get", "/v1/responses", "listResponses", "List stored responses (an extension).",
        None, query=(*_LIST_QUERY[:3], Query("model", {"type": "string"})),
    ),
    Operation(
        "get", _RESP, "getResponse", "Retrieve a stored response; stream=true replays it.",
        Response, query=(_INCLUDE, Query("stream", {"type": "boolean"}),
                         Query("starting_after", {"type": "integer"})),
    ),
    Operation("delete", _RESP, "deleteResponse", "Delete a stored response.", None),
    Operation(
        "get", _RESP + "/input_items", "listResponseInputItems",
        "The response's own input items, one page at a time.", ResponseItemList,
        query=_LIST_QUERY,
    ),
    Operation(
        "post", _RESP + "/cancel", "cancelResponse",
        "Cancel a queued or running background response (from any replica).", Response,
    ),
    Operation(
        "post", "/v1/chat/completions", "createChatCompletion",
        "A chat completion, routed by model id; streams with stream=true.",
        ChatCompletion, ChatCompletionCreate,
    ),
    Operation(
        "post", "/v1/embeddings", "createEmbedding", "Embeddings, where the model has them.",
        CreateEmbeddingResponse, EmbeddingCreate,
    ),
    Operation("get", "/v1/models", "listModels", "Every model served.", None),
    Operation("get", "/v1/models/{model_id}", "getModel", "One model.", Model),
    Operation("get", "/v1/version", "getVersion", "The server's version (an extension).", None),
    Operation(
        "get", "/v1/inspect/routes", "inspectRoutes",
        "Every route and method, each marked 'openai' or 'extension' (an extension).", None,
    ),
    Operation(
        "get", "/v1/providers", "listProviders",
        "The inference providers: type, models served, health, settings without secrets "
        "(an extension).", None,
    ),
    Operation(
        "get", "/v1/providers/{provider_id}", "getProvider", "One provider (an extension).",
        None,
    ),
)  # fmt: skip

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {"Error": _ERROR_SCHEMA}

    def add(self, target: Any, name: str, mode: JsonSchemaMode) -> dict[str, Any]:
        schema = TypeAdapter(target).json_schema(ref_template=REF, mode=mode)
        self.components.update(schema.pop("$defs", {}))
        self.components[name] = schema
        return {"$ref": REF.format(model=name)}


def _operation(op: Operation, schemas: _Schemas) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in ("conversation_id", "item_id", "response_id", "model_id", "provider_id")
        if "{" + name + "}" in op.path
    ]
    params += [
        {"name": q.name, "in": "query", "required": False, "schema": q.schema,
         "description": q.description, **({"style": q.style} if q.style else {})}
        for q in op.query
    ]  # fmt: skip
    spec: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    if params:
        spec["parameters"] = params
    if op.body is not None:
        body = schemas.add(op.body, op.body.__name__, "validation")
        if op.body_items:
            items = schemas.add(ResponseInputItemParam, "InputItem", "validation")
            body = {"allOf": [body, {"properties": {"items": {"type": "array", "items": items}}}]}
        spec["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    ok: dict[str, Any] = {"type": "object"}
    if op.response is not None:
        ok = schemas.add(
            op.response, getattr(op.response, "__name__", op.operation_id), "serialization"
        )
    error = {"content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}}
    spec["responses"] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": ok}}},
        "400": {"description": "Invalid request", **error},
        "404": {"description": "Not found", **error},
        "413": {"description": "Body too large", **error},
        "500": {"description": "Server error", **error},
    }
    if op.path not in OPEN_PATHS:
        spec["responses"]["401"] = {"description": "Missing or wrong API key", **error}
        spec["responses"]["429"] = {"description": "Rate limit reached", **error}
    else:
        spec["security"] = []  # open even when API keys are configured
    return spec


@functools.cache
def document() -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "convostack", "version": __version__},
        "paths": paths,
        # API keys are optional (see auth.py): an empty requirement allows no key at all.
        "security": [{"bearerAuth": []}, {}],
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


@functools.cache
def document_bytes() -> bytes:
    return orjson.dumps(document())
