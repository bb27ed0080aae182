"""One typed configuration, from (lowest to highest) defaults, a YAML file, the environment
(`CONVOSTACK_<FIELD>`) and command-line flags; validated once, at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from convostack.auth import ApiKey, api_keys_input, check_unique
from convostack.limits import (
    DEFAULT_MAX_ITEM_TEXT_CHARS,
    DEFAULT_MAX_ITEMS_PER_CONVERSATION,
    DEFAULT_MAX_OUTPUT_TOKENS,
    DEFAULT_MAX_TOOLS,
    Limits,
)

ENV_PREFIX = "CONVOSTACK_"


def default_home() -> Path:
    return Path(os.environ.get("CONVOSTACK_HOME") or Path.home() / ".convostack").expanduser()


class ConfigError(Exception):
    """A configuration that cannot work, with a message that says how to fix it."""


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
        description="Most characters of text in one item (and in 'instructions').",
    )
    max_items_per_conversation: int = Field(
        DEFAULT_MAX_ITEMS_PER_CONVERSATION,
        ge=1,
        description="Most items one conversation may hold; appending past it is a 400.",
    )
    max_tools: int = Field(
        DEFAULT_MAX_TOOLS, ge=1, description="Most tools in one response request."
    )
    max_output_tokens: int = Field(
        DEFAULT_MAX_OUTPUT_TOKENS,
        ge=16,
        description="Largest max_output_tokens a response request may ask for.",
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
    providers: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Inference providers, each a mapping with a 'type' (openai_compat, "
        "embedded) and an 'id'. Default: the embedded model, or --upstream when given.",
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
        )

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in Config.model_fields:
        value = environ.get(ENV_PREFIX + name.upper())
        if value is not None and value != "":
            out[name] = value
    return out


def _from_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc.strerror}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of settings, e.g. 'port: 8321'.")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


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
        layers.append((f"config file {config_file}", _from_file(config_file)))
    layers.append(("environment", _from_env(environ)))
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
        raise ConfigError(_explain(exc, source)) from None


def _explain(exc: ValidationError, source: Mapping[str, str]) -> str:
    lines = ["Invalid configuration:"]
    for err in exc.errors(include_url=False):
        name = ".".join(str(p) for p in err["loc"]) or "(root)"
        top = str(err["loc"][0]) if err["loc"] else ""
        if err["type"] == "extra_forbidden":
            known = ", ".join(sorted(Config.model_fields))
            lines.append(
                f"  - unknown setting '{name}' (from {source.get(top, '?')}); known: {known}"
            )
            continue
        where = source.get(top, "defaults")
        env = ENV_PREFIX + top.upper()
        shown = "<not shown: it holds keys>" if top == "api_keys" else repr(err.get("input"))
        lines.append(
            f"  - {name} = {shown} (from {where}): {err['msg']}. "
            f"Set it with --{top.replace('_', '-')}, {env}, or '{top}:' in the config file."
        )
    return "\n".join(lines)
