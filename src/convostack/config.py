"""One typed configuration, from (lowest to highest) defaults, a YAML file, the environment
(`CONVOSTACK_<FIELD>`) and command-line flags; validated once, at start-up."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from convostack.auth import ApiKey, api_keys_input, check_unique
from convostack.config_sources import ENV_PREFIX, ConfigError, explain, from_env, read_file
from convostack.limits import (
    DEFAULT_HISTORY_CACHE_BYTES,
    DEFAULT_MAX_CHAT_CHOICES,
    DEFAULT_MAX_INPUT_ITEMS,
    DEFAULT_MAX_ITEM_DATA_BYTES,
    DEFAULT_MAX_ITEM_TEXT_CHARS,
    DEFAULT_MAX_ITEMS_PER_CONVERSATION,
    DEFAULT_MAX_OUTPUT_TOKENS,
    DEFAULT_MAX_REFERENCE_BYTES,
    DEFAULT_MAX_TOOLS,
    Limits,
)
from convostack.responses.tools.settings import (
    DEFAULT_MAX_TOOL_ITERATIONS,
    DEFAULT_MCP_SESSION_IDLE_SECONDS,
    DEFAULT_TOOL_BREAKER_FAILURES,
    DEFAULT_TOOL_CALL_TIMEOUT_SECONDS,
    DEFAULT_TOOL_CONNECT_TIMEOUT_SECONDS,
    McpServerConfig,
    ToolSettings,
)
from convostack.responses.webhooks import WebhookEndpoint

if TYPE_CHECKING:
    from convostack.connections import ConnectionLimits


def default_home() -> Path:
    return Path(os.environ.get("CONVOSTACK_HOME") or Path.home() / ".convostack").expanduser()


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8321, ge=1, le=65535, description="TCP port to listen on.")
    shutdown_grace_seconds: int = Field(
        20,
        ge=0,
        le=3600,
        description="After SIGINT or SIGTERM, how long requests in flight may take to "
        "finish before they are cut off (a turn cut off appends nothing).",
    )
    # --- HTTP connections (connections.py); each matches a reverse-proxy setting ---
    max_connections: int = Field(
        1024,
        ge=1,
        description="Open connections one process keeps; past it the connection idle the "
        "longest is closed, or, when all have a request running, the new one gets a 503.",
    )
    max_header_bytes: int = Field(
        65536,
        ge=1024,
        description="Largest request head (request line and headers) in bytes; larger "
        "gets 431 before the rest is read.",
    )
    max_header_count: int = Field(
        100, ge=8, description="Most headers in one request; more gets 431."
    )
    max_url_bytes: int = Field(
        8192, ge=256, description="Longest request URL (path and query) in bytes; longer gets 414."
    )
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Time a client has to send a whole request head, from connecting or "
        "from its first byte after an idle keep-alive; past it, 408 and the connection closes.",
    )
    body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Longest silence while a request body is arriving; past it the "
        "connection is closed (the request is abandoned).",
    )
    keep_alive_timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="How long an idle keep-alive connection stays open after a response.",
    )
    # --- end of HTTP connections ---
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Processes serving the port, each with its own event loop and database "
        "connections (one Python thread does all of a process's work; more use more cores).",
    )
    db: str | None = Field(
        None,
        description="Database URL, e.g. sqlite:///path/to/convostack.db. "
        "Default: a SQLite file under the home folder.",
    )
    home: Path = Field(
        default_factory=default_home,
        description="Folder for the default database and other local state "
        "(default ~/.convostack, or $CONVOSTACK_HOME).",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Logging level."
    )
    # --- observability (observability/, docs/operations.md) ---
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines as text, or as one JSON object each (for collectors)."
    )
    access_log: bool = Field(
        False,
        description="One log line per request (logger convostack.access): method, path, "
        "status, duration, request id (also sent as the x-request-id header), principal.",
    )
    metrics: bool = Field(
        False,
        description="Count requests, turns, tokens, model and store latency and tool calls, "
        "served in the Prometheus format at /metrics (outside /v1: no API key needed).",
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="With metrics on: serve /metrics on this port (same host) instead of "
        "the API's, e.g. to keep it off a public listener.",
    )
    tracing: bool = Field(
        False,
        description="Export OpenTelemetry traces over OTLP/HTTP, configured by the standard "
        "OTEL_* variables (also on when OTEL_EXPORTER_OTLP_ENDPOINT is set; off with "
        "OTEL_SDK_DISABLED=true). Needs the 'otel' extra.",
    )
    trace_content: bool = Field(
        False,
        description="Put prompt and output text in model-call spans (off: spans carry "
        "models, token counts and timings only).",
    )
    # --- end of observability ---
    max_body_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="Largest request body accepted; larger gets 413."
    )
    # --- API keys and limits (auth.py, limits.py) ---
    api_keys: list[ApiKey] = Field(
        default_factory=list,
        description="API keys, each {sha256: <hex digest of the key>, principal: <tenant>}; "
        "with any, every /v1 route but /v1/health needs 'Authorization: Bearer <key>'. "
        "In the environment: plaintext 'key=principal' pairs, comma-separated, hashed at "
        "load. `convostack api-key` makes a key and its entry.",
    )
    max_item_text_chars: int = Field(
        DEFAULT_MAX_ITEM_TEXT_CHARS,
        ge=1,
        description="Most characters of text in one item (and in 'instructions', and in "
        "one message of a chat completion).",
    )
    max_items_per_conversation: int = Field(
        DEFAULT_MAX_ITEMS_PER_CONVERSATION,
        ge=1,
        description="Most items one conversation may hold; appending past it is a 400.",
    )
    history_cache_bytes: int = Field(
        DEFAULT_HISTORY_CACHE_BYTES,
        ge=0,
        description="Memory (estimated) for conversations' histories kept between turns, "
        "so a turn reads, parses and converts only the items new since the last one; "
        "least recently used first out, checked against the database on every turn; "
        "0 turns it off.",
    )
    max_tools: int = Field(
        DEFAULT_MAX_TOOLS,
        ge=1,
        description="Most tools in one response request or chat completion.",
    )
    max_output_tokens: int = Field(
        DEFAULT_MAX_OUTPUT_TOKENS,
        ge=16,
        description="Largest max_output_tokens a response request may ask for (and "
        "max_tokens or max_completion_tokens a chat completion).",
    )
    max_chat_choices: int = Field(
        DEFAULT_MAX_CHAT_CHOICES,
        ge=1,
        description="Largest 'n' (choices generated at once) a chat completion may ask for.",
    )
    max_input_items: int = Field(
        DEFAULT_MAX_INPUT_ITEMS,
        ge=1,
        description="Most items in the 'input' of one response request; more is a 400.",
    )
    max_item_data_bytes: int = Field(
        DEFAULT_MAX_ITEM_DATA_BYTES,
        ge=1,
        description="Most bytes of image and file data (base64 or URL: image_url, "
        "file_data, file_url) in one input item; more is a 400.",
    )
    max_reference_bytes: int = Field(
        DEFAULT_MAX_REFERENCE_BYTES,
        ge=1,
        description="Most bytes of stored items one request may copy through "
        "item_reference items (each reference counts its item's full size); more is a 400.",
    )
    max_conversations_per_principal: int | None = Field(
        None,
        ge=1,
        description="Most conversations one principal may hold; creating more is a 400 "
        "quota_exceeded. Default: no quota. Any quota makes every write keep the "
        "principal's usage (counted again at start); all processes sharing a database "
        "need the same quota settings.",
    )
    max_items_per_principal: int | None = Field(
        None,
        ge=1,
        description="Most items one principal may hold over all its conversations "
        "(deleted ones not counted); past it, a 400 quota_exceeded. Default: no quota.",
    )
    max_stored_bytes_per_principal: int | None = Field(
        None,
        ge=1,
        description="Most bytes of items (their stored JSON) one principal may hold; past "
        "it, a 400 quota_exceeded. Stored response objects are not counted. Default: no "
        "quota.",
    )
    rate_limit_per_minute: int | None = Field(
        None,
        ge=1,
        description="Requests per minute per principal (429 with retry-after past it), "
        "counted in each replica's memory. Default: no limit.",
    )
    rate_limit_burst: int | None = Field(
        None,
        ge=1,
        description="Requests a principal may make at once; default: a tenth "
        "of rate_limit_per_minute.",
    )

    rate_limit_bytes_per_token: int | None = Field(
        None,
        ge=1,
        description="Weighs the rate limit by size: a request costs one token plus one "
        "per this many bytes of its body (e.g. 65536: a 1 MiB body costs 17 requests' "
        "worth). Default: every request costs one.",
    )

    _api_keys_input = field_validator("api_keys", mode="before")(api_keys_input)
    _api_keys_unique = field_validator("api_keys")(check_unique)
    # --- end of API keys and limits ---

    upstream: str | None = Field(
        None,
        description="Base URL of an OpenAI-compatible engine to serve instead of the embedded "
        "model (vLLM, Ollama, llama.cpp server, SGLang, OpenAI...), e.g. http://127.0.0.1:8000/v1.",
    )
    upstream_api_key: str | None = Field(None, description="API key sent to --upstream.")
    inference_mode: Literal["live", "record", "replay", "record-if-missing"] = Field(
        "live",
        description="Record/replay of model output, for tests: live calls providers; the "
        "other modes wrap every provider in a recorder (see tests/README.md).",
    )
    recording_dir: Path | None = Field(
        None, description="Folder of recordings, for the modes other than live."
    )
    sealing_key: str | None = Field(
        None,
        description="Key that seals compaction summaries, reasoning and queued background "
        "requests (base64 of 32 random bytes; make "
        "one with: python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())'). "
        "Default: one made once and kept in the data folder; replicas on several machines "
        "must share one.",
    )

    @field_validator("sealing_key")
    @classmethod
    def _a_sealing_key(cls, value: str | None) -> str | None:
        if value is not None and len(_base64_bytes(value)) != 32:
            raise ValueError("must be the base64 of 32 random bytes")
        return value

    # --- server-side tools (responses/tools/) ---
    max_tool_iterations: int = Field(
        DEFAULT_MAX_TOOL_ITERATIONS,
        ge=1,
        le=256,
        description="Model calls one response may make while it runs server-side tools; "
        "past it the response ends incomplete (reason max_tool_iterations).",
    )
    tool_call_timeout_seconds: float = Field(
        DEFAULT_TOOL_CALL_TIMEOUT_SECONDS,
        gt=0,
        description="Longest one server-side tool call (or MCP tool listing) may take.",
    )
    tool_connect_timeout_seconds: float = Field(
        DEFAULT_TOOL_CONNECT_TIMEOUT_SECONDS,
        gt=0,
        description="Longest connecting to an MCP server may take.",
    )
    tool_breaker_failures: int = Field(
        DEFAULT_TOOL_BREAKER_FAILURES,
        ge=1,
        description="Failed calls in a row after which a response stops calling that tool "
        "server and ends incomplete (reason tool_failures).",
    )
    mcp_session_idle_seconds: float = Field(
        DEFAULT_MCP_SESSION_IDLE_SECONDS,
        gt=0,
        description="An MCP session unused this long is closed (sessions are kept between "
        "a principal's turns, so the next turn's calls need no new handshake).",
    )
    max_tool_output_chars: int = Field(
        1_048_576, ge=1, description="Largest output of one server-side tool call, in characters."
    )
    mcp_servers: list[McpServerConfig] = Field(
        default_factory=list,
        description="MCP servers configured here, usable by server_label alone: each with "
        "server_label, server_url, headers (${ENV} expanded), allowed_tools, "
        "require_approval, server_description.",
    )
    mcp_allow_private_urls: bool = Field(
        False,
        description="Let callers name MCP servers on loopback, private or link-local "
        "addresses (off: only public addresses, an SSRF guard).",
    )
    mcp_url_allowlist: list[str] = Field(
        default_factory=list,
        description="If set, the only server_url prefixes callers may name (private or not).",
    )

    providers: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Inference providers, each a mapping with a 'type' (openai_compat, "
        "embedded, embedded_embeddings) and an 'id'. Default: the embedded chat model and "
        "the embedded embedding model (all-minilm-l6-v2), or --upstream when given.",
    )

    model_aliases: dict[str, str] = Field(
        default_factory=lambda: {"gpt-4.1": "smollm2-135m-instruct"},
        description="Model ids that stand for another, e.g. {gpt-4.1: smollm2-135m-instruct}, "
        "so code written for OpenAI's names runs unchanged (by default gpt-4.1 is the "
        "embedded model): the target serves the request "
        "and the response's 'model' names the target. Listed in /v1/models. In the "
        "environment: 'alias=target' pairs, comma-separated.",
    )
    default_model: str | None = Field(
        None,
        description="The model (or alias) of a Responses API request that names none. "
        "Default: none, and such a request is a 400.",
    )

    # --- files and vector stores (files/, vector_stores/) ---
    max_file_bytes: int = Field(
        32 * 1024 * 1024,
        ge=1,
        description="Largest file /v1/files accepts; larger gets 413. Files are database "
        "rows (files/service.py says why), so this bounds a row too.",
    )
    max_file_bytes_per_principal: int | None = Field(
        None,
        ge=1,
        description="Most bytes of files one principal may hold; past it, an upload is a "
        "400 quota_exceeded. Default: no quota.",
    )
    embedder: Literal["default", "testing-hash"] = Field(
        "default",
        description="The embedder of vector stores: 'default' is the offline MiniLM; "
        "'testing-hash' is a deterministic test double for the test suites only. A store "
        "records the model it was built with and refuses another.",
    )
    file_expiry_sweep_seconds: float = Field(
        60.0,
        gt=0,
        le=86400,
        description="How often each process deletes files past their expires_after. An "
        "expired file is gone for every read at once; the sweep frees its space.",
    )
    ingest_poll_seconds: float = Field(
        2.0,
        gt=0,
        le=3600,
        description="How often a process looks in the database for files to ingest that "
        "another replica queued (its own are taken at once).",
    )
    ingest_lease_seconds: int = Field(
        120,
        ge=5,
        le=86400,
        description="How long a process holds a file it ingests without renewing its "
        "lease (renewed after every batch of chunks); a file whose process died is taken "
        "again by another after this.",
    )

    # --- background responses (responses/background.py) ---
    background_concurrency: int = Field(
        4,
        ge=0,
        le=1000,
        description="How many background responses this process runs at once (0: it "
        "queues them but leaves them to other replicas). Any process on the database "
        "takes queued ones.",
    )
    background_poll_seconds: float = Field(
        1.0,
        gt=0,
        le=3600,
        description="How often a process looks in the database for queued background "
        "responses (its own are taken at once), and how soon a running one notices a "
        "cancel made on another replica.",
    )
    background_lease_seconds: int = Field(
        30,
        ge=2,
        le=86400,
        description="How long a process holds a background response it runs without "
        "renewing its lease (renewed every background_poll_seconds or a third of this); "
        "a response whose process died is failed after this.",
    )
    background_stream_poll_seconds: float = Field(
        0.2,
        gt=0,
        le=60,
        description="How often a stream that follows a background response run by "
        "another process looks for its new events (one run here is followed at once).",
    )
    background_events_retention_seconds: int = Field(
        86400,
        ge=0,
        description="How long the stream events of a finished background response are "
        "kept for `GET /v1/responses/{id}?stream=true`; after this, asking for them is "
        "a 400.",
    )

    webhooks: list[WebhookEndpoint] = Field(
        default_factory=list,
        description="Where the end of a background response is POSTed, signed (Standard "
        "Webhooks, as OpenAI's): each with url, secret (whsec_...) and events.",
    )

    @field_validator("model_aliases", mode="before")
    @classmethod
    def _aliases_from_text(cls, value: Any) -> Any:
        """In the environment: `alias=target` pairs, comma-separated."""
        if not isinstance(value, str):
            return value
        pairs = [p.partition("=") for p in value.split(",") if p.strip()]
        if any(not sep or not a.strip() or not t.strip() for a, sep, t in pairs):
            raise ValueError("expected alias=target pairs, comma-separated")
        return {a.strip(): t.strip() for a, _, t in pairs}

    @property
    def database_url(self) -> str:
        return self.db or f"sqlite:///{self.home / 'convostack.db'}"

    @property
    def limits(self) -> Limits:
        return Limits(
            max_item_text_chars=self.max_item_text_chars,
            max_items_per_conversation=self.max_items_per_conversation,
            max_tools=self.max_tools,
            max_output_tokens=self.max_output_tokens,
            max_chat_choices=self.max_chat_choices,
            max_input_items=self.max_input_items,
            max_item_data_bytes=self.max_item_data_bytes,
            max_reference_bytes=self.max_reference_bytes,
        )

    @property
    def connection_limits(self) -> ConnectionLimits:
        # Imported here: connections.py imports uvicorn, which reading a config needs not.
        from convostack.connections import ConnectionLimits

        return ConnectionLimits(
            max_connections=self.max_connections,
            max_header_bytes=self.max_header_bytes,
            max_header_count=self.max_header_count,
            max_url_bytes=self.max_url_bytes,
            header_timeout=self.header_timeout_seconds,
            body_timeout=self.body_timeout_seconds,
        )

    @property
    def tool_settings(self) -> ToolSettings:
        return ToolSettings(
            max_tool_iterations=self.max_tool_iterations,
            tool_call_timeout_seconds=self.tool_call_timeout_seconds,
            tool_connect_timeout_seconds=self.tool_connect_timeout_seconds,
            tool_breaker_failures=self.tool_breaker_failures,
            max_tool_output_chars=self.max_tool_output_chars,
            mcp_session_idle_seconds=self.mcp_session_idle_seconds,
            mcp_servers={server.server_label: server for server in self.mcp_servers},
            mcp_allow_private_urls=self.mcp_allow_private_urls,
            mcp_url_allowlist=tuple(self.mcp_url_allowlist),
            own_addresses=((self.host, self.port),),
        )

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"


def _base64_bytes(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return b""


def file_settings(path: Path) -> dict[str, Any]:
    """The settings a YAML config file holds, not yet validated (ConfigError if unreadable)."""
    return read_file(path)


def load_config(
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Merge the sources and validate; raises ConfigError naming each bad setting and its source."""
    environ = os.environ if environ is None else environ
    if config_file is None and environ.get(ENV_PREFIX + "CONFIG"):
        config_file = Path(environ[ENV_PREFIX + "CONFIG"])
    layers: list[tuple[str, dict[str, Any]]] = []
    if config_file is not None:
        layers.append((f"config file {config_file}", read_file(config_file)))
    layers.append(("environment", from_env(environ, Config.model_fields)))
    layers.append(("command line", {k: v for k, v in (overrides or {}).items() if v is not None}))
    merged: dict[str, Any] = {}
    source: dict[str, str] = {}
    for where, values in layers:
        merged.update(values)
        source.update(dict.fromkeys(values, where))
    try:
        # Environment values are strings; lax mode turns "8321" into 8321.
        return Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(explain(exc, source, Config.model_fields)) from None
