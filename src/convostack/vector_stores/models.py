"""Request bodies of the Vector Stores API, as narrow pydantic models (a mistake is a 400
naming the field). Filters are checked by filters.py, for messages that name the path."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from convostack.errors import InvalidRequestError, invalid_type

AttributeValue = StrictStr | StrictBool | StrictInt | StrictFloat
# OpenAI's `auto`: 800-token chunks overlapping by 400.
AUTO_CHUNKING: dict[str, Any] = {
    "type": "static",
    "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
}
MAX_ATTRIBUTES = 16


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StaticChunking(_Body):
    max_chunk_size_tokens: int = Field(ge=100, le=4096)
    chunk_overlap_tokens: int = Field(ge=0)


class ChunkingStrategy(_Body):
    type: Literal["auto", "static"]
    static: StaticChunking | None = None

    def resolved(self, param: str) -> dict[str, Any]:
        if self.type == "auto":
            return AUTO_CHUNKING
        if self.static is None:
            raise InvalidRequestError(
                f"Missing required parameter: '{param}.static'.",
                code="missing_required_parameter", param=f"{param}.static",
            )  # fmt: skip
        if self.static.chunk_overlap_tokens > self.static.max_chunk_size_tokens // 2:
            raise InvalidRequestError(
                f"Invalid '{param}.static.chunk_overlap_tokens': it must not exceed half of "
                "max_chunk_size_tokens.",
                code="invalid_value", param=f"{param}.static.chunk_overlap_tokens",
            )  # fmt: skip
        return {"type": "static", "static": self.static.model_dump()}


def chunking(strategy: ChunkingStrategy | None, param: str = "chunking_strategy") -> dict[str, Any]:
    return AUTO_CHUNKING if strategy is None else strategy.resolved(param)


class ExpiresAfter(_Body):
    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


class VectorStoreCreate(_Body):
    name: str | None = Field(None, max_length=256)
    description: str | None = Field(None, max_length=512)
    file_ids: list[str] = Field(default_factory=list, max_length=500)
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Any = None
    expires_after: ExpiresAfter | None = None


class VectorStoreUpdate(_Body):
    name: str | None = Field(None, max_length=256)
    metadata: Any = None
    expires_after: ExpiresAfter | None = None


class StoreFileCreate(_Body):
    file_id: str
    attributes: dict[str, AttributeValue] | None = None
    chunking_strategy: ChunkingStrategy | None = None


class StoreFileUpdate(_Body):
    attributes: dict[str, AttributeValue] | None


class BatchCreate(_Body):
    file_ids: list[str] | None = Field(None, max_length=500)
    files: list[StoreFileCreate] | None = Field(None, max_length=500)
    attributes: dict[str, AttributeValue] | None = None
    chunking_strategy: ChunkingStrategy | None = None


class HybridSearch(_Body):
    embedding_weight: float = Field(ge=0)
    text_weight: float = Field(ge=0)


class RankingOptions(_Body):
    ranker: Literal["none", "auto", "default-2024-11-15"] | None = None
    score_threshold: float = Field(0.0, ge=0, le=1)
    hybrid_search: HybridSearch | None = None


class SearchRequest(_Body):
    query: str | list[str]
    max_num_results: int = Field(10, ge=1, le=50)
    filters: Any = None
    ranking_options: RankingOptions | None = None
    # Accepted; queries are searched as given (no model rewrites them here).
    rewrite_query: bool = False


def check_attributes(value: dict[str, Any] | None, param: str = "attributes") -> dict[str, Any]:
    if value is None:
        return {}
    if len(value) > MAX_ATTRIBUTES:
        raise InvalidRequestError(
            f"Invalid '{param}': at most {MAX_ATTRIBUTES} keys, got {len(value)}.",
            code="object_above_max_properties", param=param,
        )  # fmt: skip
    for key, item in value.items():
        if len(key) > 64:
            raise InvalidRequestError(
                f"Invalid '{param}': key '{key[:80]}' is longer than 64 characters.",
                code="string_above_max_length", param=f"{param}.{key[:80]}",
            )  # fmt: skip
        if isinstance(item, str) and len(item) > 512:
            raise InvalidRequestError(
                f"Invalid '{param}.{key}': string longer than 512 characters.",
                code="string_above_max_length", param=f"{param}.{key}",
            )  # fmt: skip
    return value


def queries(value: str | list[str]) -> list[str]:
    found = [value] if isinstance(value, str) else value
    if not found or not all(q.strip() for q in found) or len(found) > 10:
        raise invalid_type("query", "a non-empty string or 1 to 10 non-empty strings", value)
    return found
