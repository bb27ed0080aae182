"""The terminal commands: `convostack chat` and `convostack conversations ...`. Entry
points only: the REPL is chat.py, JSONL is archive.py."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
import orjson

from convostack.cli_options import config_option
from convostack.config import Config, load_config
from convostack.config_sources import ConfigError
from convostack.http import DEFAULT_PRINCIPAL
from convostack.storage.base import ConversationMissing, Store

T = TypeVar("T")

CONFIG_OPTION = config_option("YAML config file naming the database [env CONVOSTACK_CONFIG].")
DB_OPTION = click.option("--db", help="Database URL [default: the configured one].")
PRINCIPAL_OPTION = click.option(
    "--principal",
    default=DEFAULT_PRINCIPAL,
    show_default=True,
    help="Whose conversations (the tenant an API key acts as; 'default' without keys).",
)


@click.command()
@click.option("--url", help="The server's base URL [default: the configured host and port].")
@click.option("--model", help="Model to answer [default: the first the server lists].")
@click.option("--conversation", help="Continue this conversation [default: a new one].")
@click.option(
    "--api-key",
    envvar="CONVOSTACK_API_KEY",
    help="Sent as Bearer [env CONVOSTACK_API_KEY; default: none needed].",
)
def chat(url: str | None, model: str | None, conversation: str | None, api_key: str | None) -> None:
    """Chat with a running server: each line is a turn on one conversation, the answer
    streamed as it is written. /new, /history, /model NAME, /quit."""
    import openai

    from convostack.terminal import chat as repl

    base_url = url or _config(None).base_url
    base_url = base_url.rstrip("/") if base_url.rstrip("/").endswith("/v1") else base_url + "/v1"
    client = openai.OpenAI(base_url=base_url, api_key=api_key or "none", max_retries=1)
    try:
        session = repl.ChatSession(client, sys.stdout, model, conversation)
    except openai.APIConnectionError:
        raise click.ClickException(
            f"No server answers at {base_url}: start one with 'convostack serve', or give --url."
        ) from None
    except openai.APIError as exc:
        raise click.ClickException(getattr(exc, "message", str(exc))) from None
    repl.run(session, input)


@click.group()
def conversations() -> None:
    """A database's conversations: list, show, export and import them (JSONL)."""


def _config(config_file: Path | None, **overrides: str | None) -> Config:
    try:
        return load_config(config_file, overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _on_store(config: Config, work: Callable[[Store], Awaitable[T]]) -> T:
    from convostack.stack import open_configured_store

    async def run() -> T:
        store = open_configured_store(config.database_url)
        await store.start()
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except ConversationMissing as exc:
        raise click.ClickException(f"No conversation '{exc.conversation_id}'.") from None


@conversations.command("list")
@CONFIG_OPTION
@DB_OPTION
@PRINCIPAL_OPTION
def list_conversations(config_file: Path | None, db: str | None, principal: str) -> None:
    """One line per conversation, newest first: id, created, metadata."""
    import datetime

    async def work(store: Store) -> None:
        page = await store.list_conversations(
            principal, after=None, limit=100, order="desc", metadata={}
        )
        for row in page.rows:
            when = datetime.datetime.fromtimestamp(row.created_at).isoformat(" ", "seconds")
            click.echo(f"{row.id}  {when}  {orjson.dumps(row.metadata).decode()}")
        if page.has_more:
            click.echo("(the newest 100 shown; 'export' writes them all)")

    _on_store(_config(config_file, db=db), work)


@conversations.command("show")
@click.argument("conversation_id")
@CONFIG_OPTION
@DB_OPTION
@PRINCIPAL_OPTION
def show(conversation_id: str, config_file: Path | None, db: str | None, principal: str) -> None:
    """A conversation's items, oldest first, one or a few lines each."""
    from convostack.terminal.chat import describe

    async def work(store: Store) -> None:
        for body in await store.all_items(principal, conversation_id):
            click.echo(describe(orjson.loads(body)))

    _on_store(_config(config_file, db=db), work)


@conversations.command("export")
@click.argument("conversation_id", required=False)
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False))
@CONFIG_OPTION
@DB_OPTION
@PRINCIPAL_OPTION
def export(
    conversation_id: str | None,
    output: Path | None,
    config_file: Path | None,
    db: str | None,
    principal: str,
) -> None:
    """Write one conversation, or all of the principal's (oldest first), as JSONL to
    stdout or --output."""
    from convostack.terminal import archive

    async def work(store: Store) -> list[bytes]:
        if conversation_id is not None:
            return [await archive.export_one(store, principal, conversation_id)]
        return [
            await archive.export_line(store, principal, r)
            async for r in archive.rows(store, principal)
        ]

    lines = _on_store(_config(config_file, db=db), work)
    if output is None:
        sys.stdout.buffer.write(b"".join(lines))
    else:
        output.write_bytes(b"".join(lines))
        click.echo(f"{len(lines)} conversation(s) written to {output}", err=True)


@conversations.command("import")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@CONFIG_OPTION
@DB_OPTION
@PRINCIPAL_OPTION
def import_(source: Path, config_file: Path | None, db: str | None, principal: str) -> None:
    """Read JSONL from `export` (a file, or - for stdin) and create each conversation,
    keeping its id, creation time, metadata and items in order. An id already in the
    database is skipped, never merged."""
    from convostack.terminal import archive

    data = sys.stdin.buffer.read() if str(source) == "-" else source.read_bytes()

    async def work(store: Store) -> archive.ImportResult:
        return await archive.import_lines(store, principal, data.splitlines())

    try:
        result = _on_store(_config(config_file, db=db), work)
    except archive.ArchiveError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{result.imported} conversation(s) imported", err=True)
    for skipped in result.skipped:
        click.echo(f"skipped {skipped}: already in the database", err=True)
