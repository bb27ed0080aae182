"""`convostack recordings list|show|prune`: the recorded model output the tests replay,
through its index (providers/recording_index.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import orjson

from convostack.providers.recording import safe_test_id
from convostack.providers.recording_index import Entry, RecordingIndex

DIR_OPTION = click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("tests/integration/recordings"),
    show_default=True,
    help="The recordings folder.",
)


def _index(directory: Path) -> RecordingIndex:
    if not directory.is_dir():
        raise click.ClickException(f"no recordings folder at {directory}; give --dir.")
    index = RecordingIndex(directory)
    index.sync()
    return index


@click.group()
def recordings() -> None:
    """Recorded model output for the tests (see tests/README.md)."""


@recordings.command("list")
@DIR_OPTION
@click.option("--test", help="Only recordings whose test id or path contains this.")
def list_recordings(directory: Path, test: str | None) -> None:
    """One line per recording: recorded at, endpoint, model, test id, file."""
    for e in _index(directory).entries(test):
        click.echo(
            f"{e.recorded_at}  {e.endpoint:<11}  {e.model or '-':<24}  {e.test_id}  {e.path}"
        )


@recordings.command("show")
@DIR_OPTION
@click.argument("path")
def show_recording(directory: Path, path: str) -> None:
    """A recording's index entry and its JSON (PATH: the file, or a unique part of it)."""
    found = [e for e in _index(directory).entries() if path in e.path]
    if len(found) != 1:
        raise click.ClickException(
            f"{len(found)} recordings match {path!r}; give more of the path (see 'list')."
        )
    entry = found[0]
    click.echo(f"# {entry.path}: {entry.endpoint}, model {entry.model}, test {entry.test_id}, "
               f"recorded {entry.recorded_at}, {entry.size} bytes")  # fmt: skip
    record = orjson.loads((directory / entry.path).read_bytes())
    click.echo(orjson.dumps(record, option=orjson.OPT_INDENT_2).decode())


@recordings.command("prune")
@DIR_OPTION
@click.option(
    "--tests",
    "test_paths",
    multiple=True,
    default=("tests/integration",),
    show_default=True,
    help="Where the tests that replay these recordings are (collected with pytest).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
def prune_recordings(directory: Path, test_paths: tuple[str, ...], dry_run: bool) -> None:
    """Remove the recordings of tests that no longer exist (pytest collects the tests;
    a recording belongs to the test whose id names its folder)."""
    index = _index(directory)
    live = {safe_test_id(node) for node in _collected(test_paths)}
    unused = [e for e in index.entries() if _owner(e) is not None and _owner(e) not in live]
    for e in unused:
        click.echo(f"{'would remove' if dry_run else 'removed'} {e.path}")
    if not dry_run:
        index.remove(unused)
    click.echo(f"{len(unused)} of {len(index.entries()) + (0 if dry_run else len(unused))} "
               "recordings unused")  # fmt: skip


def _owner(entry: Entry) -> str | None:
    """The test folder a recording is filed under (None: filed under no test)."""
    parts = entry.path.split("/")
    return parts[0] if len(parts) > 1 else None


def _collected(test_paths: tuple[str, ...]) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         *test_paths],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode not in (0, 5):
        raise click.ClickException(
            "pytest could not collect the tests, so nothing was pruned:\n" + done.stdout[-2000:]
        )
    return {line.strip() for line in done.stdout.splitlines() if "::" in line}
