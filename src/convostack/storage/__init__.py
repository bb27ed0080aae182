"""Storage backends behind one protocol, chosen by the database URL's scheme."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from convostack.storage.base import Store
from convostack.storage.quotas import Quotas


class UnsupportedDatabaseURL(ValueError):
    pass


def sqlite_path(url: str) -> Path:
    """`sqlite:///abs/path.db` (three or four slashes), `sqlite:rel/path.db`, or a path."""
    rest = url.removeprefix("sqlite:")
    if rest.startswith("//"):
        rest = rest[2:]
        if rest.startswith("//"):  # SQLAlchemy's four-slash absolute form
            rest = rest[1:]
    return Path(rest).expanduser()


def redacted_url(url: str) -> str:
    """The database URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def open_store(url: str, quotas: Quotas | None = None) -> Store:
    scheme = urlsplit(url).scheme
    if scheme in ("", "sqlite", "file") or len(scheme) == 1:  # len 1: a Windows drive letter
        from convostack.storage.sqlite import SqliteStore

        return SqliteStore(sqlite_path(url.removeprefix("file:")), quotas)
    if scheme in ("postgresql", "postgres"):
        return _postgres_store(url, quotas)
    raise UnsupportedDatabaseURL(
        f"unsupported database URL scheme '{scheme}': use sqlite:///path/to/file.db or "
        "postgresql://user:password@host:5432/database"
    )


def _postgres_store(url: str, quotas: Quotas | None) -> Store:
    try:
        from convostack.storage.postgres import PostgresSettings, PostgresStore
    except ImportError as exc:
        raise UnsupportedDatabaseURL(
            f"a postgresql:// database needs asyncpg ({exc}): pip install 'convostack[postgres]'"
        ) from None
    try:
        dsn, settings = PostgresSettings.split_url(url)
    except ValueError as exc:
        raise UnsupportedDatabaseURL(str(exc)) from None
    return PostgresStore(dsn, settings, quotas)
