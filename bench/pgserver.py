"""A throwaway PostgreSQL server for the targets that store on PostgreSQL (convostack with
`--db postgresql://...`, smg with `--history-backend postgres`).

One server at a time, started on first use on a free port of 127.0.0.1, in its own folder
under /tmp, with durable settings (fsync and synchronous_commit on, PostgreSQL's
defaults); each launch of a target gets a new empty database in it. bench/run.py stops
it after each target, so every PostgreSQL target starts on a fresh server; it is also
stopped at exit. Its CPU and memory are its own processes', never counted as the
target's (the target's are its own process tree, and the server is not part of it);
its CPU per request is reported beside the target's, for information.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from contextlib import suppress
from pathlib import Path

from common import JSONDict, cpu_seconds, free_port, log

PG_ROOT = Path("/usr/lib/postgresql")
SERVER_USER = "postgres"
MAX_CONNECTIONS = 100
TOOL_TIMEOUT_S = 120


def pg_bin() -> Path | None:
    """The newest PostgreSQL's server binaries (initdb, pg_ctl), or None."""
    found = sorted(PG_ROOT.glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def installed() -> bool:
    return pg_bin() is not None


NOT_INSTALLED = (
    "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
    "apt-get install -y postgresql, or bash bench/peers/install.sh"
)


def _as_postgres(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL tool as the postgres user when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        argv = ["runuser", "-u", SERVER_USER, "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=True)


class ThrowawayPostgres:
    """The server; `database()` starts it if needed and returns a new database's URL."""

    def __init__(self) -> None:
        self._folder: Path | None = None
        self._port = 0
        self._databases = 0
        self._at_exit = False
        # Server settings added at the next start (bench/profile.py: pg_stat_statements).
        self.settings: dict[str, str] = {}

    @property
    def running(self) -> bool:
        return self._folder is not None

    def _start(self) -> None:
        pg = pg_bin()
        if pg is None:
            raise RuntimeError(NOT_INSTALLED)
        # Its own folder under /tmp: the postgres user cannot enter the bench's private one.
        folder = Path(tempfile.mkdtemp(prefix="convostack-bench-pg-", dir="/tmp"))
        if os.geteuid() == 0:
            shutil.chown(folder, SERVER_USER)
        data = folder / "pgdata"
        port = free_port()
        settings = {"fsync": "on", "max_connections": str(MAX_CONNECTIONS), **self.settings}
        options = f"-h 127.0.0.1 -p {port} -k {folder} " + " ".join(
            f"-c {key}={value}" for key, value in settings.items()
        )
        try:
            _as_postgres([str(pg / "initdb"), "-D", str(data), "-A", "trust", "-U", SERVER_USER])
            _as_postgres([str(pg / "pg_ctl"), "-D", str(data), "-o", options,
                          "-l", str(folder / "postgres.log"), "-w", "start"])  # fmt: skip
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._folder, self._port, self._databases = folder, port, 0
        if not self._at_exit:
            atexit.register(self.stop)
            self._at_exit = True
        log(f"  PostgreSQL {pg.parent.name} started on 127.0.0.1:{port} (not counted)")

    def database(self) -> str:
        """A new, empty database; its URL (postgres://postgres@127.0.0.1:PORT/NAME)."""
        if not self.running:
            self._start()
        pg = pg_bin()
        assert pg is not None
        self._databases += 1
        name = f"bench{self._databases}"
        _as_postgres([str(pg / "createdb"), "-h", "127.0.0.1", "-p", str(self._port),
                      "-U", SERVER_USER, name])  # fmt: skip
        return f"postgres://{SERVER_USER}@127.0.0.1:{self._port}/{name}"

    def query(self, url: str, statement: str) -> list[list[str]]:
        """The rows of one SQL statement (psql, tab-separated text) on the database `url`."""
        psql = str(pg_bin() or "") + "/psql"
        done = subprocess.run(
            [psql, url, "-v", "ON_ERROR_STOP=1", "-AtF", "\t", "-c", statement],
            capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=True,
        )  # fmt: skip
        return [line.split("\t") for line in done.stdout.splitlines()]

    # Per-statement counts, with the server started with
    # settings["shared_preload_libraries"] = "pg_stat_statements" (bench/profile.py).
    def reset_statements(self, url: str) -> None:
        self.query(url, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        self.query(url, "SELECT pg_stat_statements_reset()")

    def statements(self, url: str, requests: int, top: int = 12) -> list[JSONDict]:
        """Since the reset: each statement's calls per request (each call is a round trip
        from asyncpg: Bind, Execute, Sync), rows per call and mean execution time in the
        server, most called first (the statistics' own queries excluded)."""
        rows = self.query(
            url,
            "SELECT calls, rows, mean_exec_time, left(regexp_replace(query, '\\s+', ' ', 'g'), 90)"
            " FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'"
            f" ORDER BY calls DESC LIMIT {top}",
        )
        return [
            {"calls_per_request": round(int(calls) / max(1, requests), 3),
             "rows_per_call": round(int(found) / max(1, int(calls)), 2),
             "mean_exec_ms": round(float(mean), 4), "query": text}
            for calls, found, mean, text in rows
        ]  # fmt: skip

    def postmaster_pid(self) -> int | None:
        """The server's main process (its backends are its children), or None."""
        if self._folder is None:
            return None
        with suppress(OSError, ValueError, IndexError):
            return int((self._folder / "pgdata" / "postmaster.pid").read_text().split()[0])
        return None

    def cpu_s(self) -> float:
        """CPU seconds of the server and its backends so far, live or ended (asyncpg
        replaces a connection after 50,000 queries), 0 when not running."""
        pid = self.postmaster_pid()
        return cpu_seconds(pid, reaped=True) if pid else 0.0

    def stop(self) -> None:
        folder, self._folder = self._folder, None
        if folder is None:
            return
        pg = pg_bin()
        try:
            if pg is not None:
                with suppress(subprocess.SubprocessError, OSError):
                    _as_postgres(
                        [str(pg / "pg_ctl"), "-D", str(folder / "pgdata"), "-m", "fast", "-w",
                         "stop"]
                    )  # fmt: skip
        finally:
            shutil.rmtree(folder, ignore_errors=True)


# The one server of this process.
POSTGRES = ThrowawayPostgres()
