"""Where settings come from before they are validated: a YAML file and the environment,
and the message that names each bad one with its source."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from convostack.redaction import strip_userinfo

ENV_PREFIX = "CONVOSTACK_"


class ConfigError(Exception):
    """A configuration that cannot work, with a message that says how to fix it."""


def from_env(environ: Mapping[str, str], fields: Iterable[str]) -> dict[str, Any]:
    """The settings named `CONVOSTACK_<NAME>` in `environ`, as strings."""
    out: dict[str, Any] = {}
    for name in fields:
        value = environ.get(ENV_PREFIX + name.upper())
        if value is not None and value != "":
            out[name] = value
    return out


def read_file(path: Path) -> dict[str, Any]:
    """A YAML config file's settings, not yet validated (ConfigError if unreadable)."""
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


def explain(exc: ValidationError, source: Mapping[str, str], fields: Iterable[str]) -> str:
    """Each bad setting in one line: its value (never a key), where it came from, how to set it."""
    lines = ["Invalid configuration:"]
    for err in exc.errors(include_url=False):
        name = ".".join(str(p) for p in err["loc"]) or "(root)"
        top = str(err["loc"][0]) if err["loc"] else ""
        if err["type"] == "extra_forbidden":
            known = ", ".join(sorted(fields))
            lines.append(
                f"  - unknown setting '{name}' (from {source.get(top, '?')}); known: {known}"
            )
            continue
        where = source.get(top, "defaults")
        env = ENV_PREFIX + top.upper()
        # Keys are never shown; a URL's userinfo (a password) is blanked.
        shown = (
            "<not shown: it holds keys>"
            if top == "api_keys"
            else strip_userinfo(repr(err.get("input")))
        )
        lines.append(
            f"  - {name} = {shown} (from {where}): {err['msg']}. "
            f"Set it with --{top.replace('_', '-')}, {env}, or '{top}:' in the config file."
        )
    return "\n".join(lines)
