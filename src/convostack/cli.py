"""The `convostack` command: entry points only, no logic of its own."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from convostack import __version__
from convostack.cli_options import config_option
from convostack.config import Config, load_config
from convostack.config_sources import ConfigError
from convostack.recordings_cli import recordings
from convostack.terminal import commands as terminal_commands

log = logging.getLogger("convostack")


def _configure_logging(level: str, log_format: str = "text") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if log_format == "json":
        from convostack.observability.logs import JsonFormatter

        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    # uvicorn's own start-up chatter is replaced by our one line; its errors still show.
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


def _load(config_file: Path | None, **overrides: Any) -> Config:
    try:
        return load_config(config_file, overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
@click.version_option(__version__, prog_name="convostack")
def main() -> None:
    """convostack: an OpenAI-compatible server for stateful conversations."""


@main.command()
@click.option("--host", help="Address to listen on [default: 127.0.0.1; env CONVOSTACK_HOST].")
@click.option("--port", type=int, help="Port to listen on [default: 8321; env CONVOSTACK_PORT].")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Processes serving the port; more use more cores [default: 1; env CONVOSTACK_WORKERS].",
)
@click.option(
    "--db", help="Database URL [default: sqlite under $CONVOSTACK_HOME; env CONVOSTACK_DB]."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="YAML config file [env CONVOSTACK_CONFIG].",
)
@click.option(
    "--upstream",
    help="Serve an OpenAI-compatible engine's models instead of the embedded model, e.g. "
    "http://127.0.0.1:8000/v1 (vLLM, Ollama, llama.cpp server, SGLang, OpenAI) "
    "[env CONVOSTACK_UPSTREAM].",
)
@click.option(
    "--upstream-api-key", help="API key sent to --upstream [env CONVOSTACK_UPSTREAM_API_KEY]."
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Logging level [default: info].",
)
def serve(
    host: str | None,
    port: int | None,
    workers: int | None,
    db: str | None,
    config_file: Path | None,
    upstream: str | None,
    upstream_api_key: str | None,
    log_level: str | None,
) -> None:
    """Start the server."""
    config = _load(
        config_file,
        host=host,
        port=port,
        workers=workers,
        db=db,
        upstream=upstream,
        upstream_api_key=upstream_api_key,
        log_level=log_level,
    )
    _configure_logging(config.log_level, config.log_format)
    from convostack.server import run
    from convostack.stack import StartupError, pull_missing_model

    try:
        pull_missing_model(config)
        run(config)
    except (ConfigError, StartupError) as exc:  # a stack that cannot be built or started
        raise click.ClickException(str(exc)) from None


@main.group()
def model() -> None:
    """The embedded model's file."""


@model.command("pull")
@config_option("YAML config file (its 'home' is where the model goes) [env CONVOSTACK_CONFIG].")
def model_pull(config_file: Path | None) -> None:
    """Fetch the embedded model (98 MB, once) so that serving it needs no network."""
    from convostack.providers import embedded_model

    _configure_logging("info")
    found = embedded_model.installed_model_path()
    if found is not None:
        click.echo(f"the embedded model is installed: {found}")
        return
    config = _load(config_file)
    try:
        click.echo(f"the embedded model is at {embedded_model.pull(config.home)}")
    except embedded_model.ModelPullError as exc:
        raise click.ClickException(str(exc)) from None


@main.command("api-key")
@click.option("--principal", required=True, help="Who the key acts as: a tenant name.")
@click.option(
    "--stdin", "from_stdin", is_flag=True, help="Hash a key read from stdin instead of a new one."
)
def api_key(principal: str, from_stdin: bool) -> None:
    """Make an API key: the key (shown once, stored nowhere) and its config file entry."""
    from pydantic import ValidationError

    from convostack.auth import MIN_KEY_LENGTH, ApiKey, hash_key, new_key

    key = sys.stdin.readline().strip() if from_stdin else new_key()
    if len(key) < MIN_KEY_LENGTH:
        raise click.ClickException(f"A key must be at least {MIN_KEY_LENGTH} characters.")
    try:
        entry = ApiKey(sha256=hash_key(key), principal=principal)
    except ValidationError:
        raise click.ClickException(
            "A principal is 1 to 128 letters, digits or ._:@/- (starting with a letter or digit)."
        ) from None
    if not from_stdin:
        click.echo(f"# the key, for the client (Authorization: Bearer ...): {key}")
    click.echo("# the entry for the config file, under api_keys:")
    click.echo(yaml.safe_dump([entry.model_dump()], sort_keys=False).rstrip())


@main.command("config")
@config_option("YAML config file to validate and show merged with env and defaults.")
@click.option("--sample", is_flag=True, help="Print a commented sample config file instead.")
@click.option("--reference", is_flag=True, help="Print the settings' reference (Markdown) instead.")
def show_config(config_file: Path | None, sample: bool, reference: bool) -> None:
    """Print the effective configuration (or a sample file) as YAML."""
    if sample:
        click.echo(sample_config())
        return
    if reference:
        from convostack.config_reference import render

        click.echo(render(), nl=False)
        return
    config = _load(config_file)
    click.echo(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).rstrip())


main.add_command(recordings)
main.add_command(terminal_commands.chat)
main.add_command(terminal_commands.conversations)


def sample_config() -> str:
    """A sample config file, generated from the field descriptions."""
    lines = ["# convostack configuration (YAML). Every setting is optional."]
    defaults = Config().model_dump(mode="json")
    for name, field in Config.model_fields.items():
        lines.append(f"# {field.description} Env: CONVOSTACK_{name.upper()}.")
        value = defaults[name]
        rendered = _entry(name, value)
        lines.append(f"# {rendered}" if value is None or name == "home" else rendered)
    return "\n".join(lines + _provider_samples())


def _provider_samples() -> list[str]:
    """Every provider type's settings with their defaults, as a commented 'providers:'."""
    from convostack.providers.registry import PROVIDER_TYPES
    from convostack.providers.settings import ProviderSettings

    lines = [
        "# Each provider type's settings, with their defaults ('<required>' has none):",
        "# providers:",
    ]
    for kind, spec in PROVIDER_TYPES.items():
        lines.append(f"#   - type: {kind}")
        for name, field in spec.settings.model_fields.items():
            if name == "type":
                continue
            # A type's own default for a common field (its id) hides the description.
            common = ProviderSettings.model_fields.get(name)
            lines.append(f"#     # {field.description or (common and common.description)}")
            if field.is_required():
                lines.append(f"#     {name}: <required>")
            else:
                value = field.get_default(call_default_factory=True)
                lines.append(f"#     {_entry(name, value)}")
    return lines


def _entry(name: str, value: object) -> str:
    """`name: value` in YAML, on one line: the one-key mapping without its own braces
    (only those: a mapping value keeps its own)."""
    return yaml.safe_dump({name: value}, default_flow_style=True).strip()[1:-1]
