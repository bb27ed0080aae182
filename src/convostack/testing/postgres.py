"""A throwaway PostgreSQL server for tests, and fresh schemas inside any PostgreSQL.

`python -m convostack.testing.postgres run [--database NAME]... -- COMMAND...` runs
`initdb` into a temp folder, starts the server on a free port of 127.0.0.1 (trust
authentication, no durability: it is thrown away), creates the named databases, runs
COMMAND with `CONVOSTACK_TEST_POSTGRES=postgresql://postgres@127.0.0.1:PORT` (the
server; append `/NAME` for a database) and `CONVOSTACK_TEST_POSTGRES_URL` (its
`postgres` database) in the environment, then stops the server and deletes the folder,
whatever COMMAND did. `make test` runs the PostgreSQL suites this way.

PostgreSQL refuses to run as root; as root the server runs as the `postgres` user
(which Debian's package creates). The binaries are found with `pg_config --bindir`,
in `/usr/lib/postgresql/<version>/bin`, or on PATH; `CONVOSTACK_PG_BINDIR` overrides.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from convostack.testing.stack import free_port

SERVER_ENV = "CONVOSTACK_TEST_POSTGRES"
URL_ENV = "CONVOSTACK_TEST_POSTGRES_URL"
SERVER_USER = "postgres"
# Settings for a server that is thrown away: durability buys nothing here.
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
}


class PostgresNotFound(RuntimeError):
    pass


def bindir() -> Path:
    configured = os.environ.get("CONVOSTACK_PG_BINDIR")
    if configured:
        return Path(configured)
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            found = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            )
            candidates.append(Path(found.stdout.strip()))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(
        (Path(v) for v in versions), key=lambda p: int(p.parent.name), reverse=True
    )
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise PostgresNotFound(
        "No PostgreSQL server binaries (initdb, pg_ctl) found. Install them "
        "(Debian: apt-get install -y postgresql) or set CONVOSTACK_PG_BINDIR."
    )


def _root() -> bool:
    return os.geteuid() == 0


def _as_server_user(command: list[str]) -> list[str]:
    if not _root():
        return command
    return ["runuser", "-u", SERVER_USER, "--", *command]


def _give_to_server_user(path: Path) -> None:
    if _root():
        user = pwd.getpwnam(SERVER_USER)
        os.chown(path, user.pw_uid, user.pw_gid)


async def create_databases(server_url: str, names: Sequence[str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(server_url + "/postgres")
    try:
        for name in names:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@contextlib.contextmanager
def throwaway_server(databases: Sequence[str] = ()) -> Iterator[str]:
    """Start a PostgreSQL server; yields its URL, without a database:
    `postgresql://postgres@127.0.0.1:PORT` (`postgres` and `databases` exist)."""
    binaries = bindir()
    # As root the server user must reach the folder: /tmp, whatever TMPDIR says.
    folder = Path(tempfile.mkdtemp(prefix="convostack-pg-", dir="/tmp" if _root() else None))
    _give_to_server_user(folder)
    data = folder / "data"
    log = folder / "server.log"
    port = free_port()
    try:
        subprocess.run(
            _as_server_user(
                [str(binaries / "initdb"), "-D", str(data), "-U", SERVER_USER, "-A", "trust",
                 "-E", "UTF8", "--no-sync"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        options = " ".join(f"-c {k}={v}" for k, v in SERVER_SETTINGS.items())
        subprocess.run(
            _as_server_user(
                [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                 "-o", f"-p {port} -k {folder} {options}", "start"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"postgresql://{SERVER_USER}@127.0.0.1:{port}"
            asyncio.run(create_databases(url, databases))
            yield url
        finally:
            subprocess.run(
                _as_server_user(
                    [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
                ),
                stdout=subprocess.DEVNULL,
                check=False,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def with_query(url: str, **params: str) -> str:
    """The URL with these query parameters added (or replaced)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(params)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _run_sql(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A new, empty schema in the database at `url`, dropped afterwards; yields a URL
    whose connections use only that schema (`search_path`), so each test starts empty.
    Call it outside any running event loop (it runs its own)."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    asyncio.run(_run_sql(url, f"CREATE SCHEMA {name}"))
    try:
        yield with_query(url, search_path=name)
    finally:
        asyncio.run(_run_sql(url, f"DROP SCHEMA {name} CASCADE"))


def postgres_url_for_tests(db_option: str | None) -> str | None:
    """The PostgreSQL database tests should use: `--db` when it is a PostgreSQL URL, else
    CONVOSTACK_TEST_POSTGRES_URL; None when neither is given."""
    if db_option and urlsplit(db_option).scheme in ("postgres", "postgresql"):
        return db_option
    return os.environ.get(URL_ENV) or None


@contextlib.contextmanager
def schema_for_test(config: pytest.Config) -> Iterator[str]:
    """A fresh schema (see fresh_schema) in the PostgreSQL database the test run was
    given; skips the test when it was given none."""
    server = postgres_url_for_tests(config.getoption("--db"))
    if server is None:
        pytest.skip(
            "no PostgreSQL for tests: give --db postgresql://... or set "
            f"{URL_ENV} (make test-postgres starts a throwaway server)"
        )
    with fresh_schema(server) as url:
        yield url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convostack.testing.postgres")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a command with a throwaway PostgreSQL server")
    run.add_argument("--database", action="append", default=[], help="create this database")
    run.add_argument("argv", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        parser.error("give a command after --")
    # A stop by SIGTERM still stops the server and removes its folder.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        with throwaway_server(args.database) as url:
            print(f"PostgreSQL for tests at {url}", file=sys.stderr, flush=True)
            env = {**os.environ, SERVER_ENV: url, URL_ENV: url + "/postgres"}
            return subprocess.run(command, env=env, check=False).returncode
    except PostgresNotFound as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
