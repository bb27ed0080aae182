"""One SQL statement on a test's database, from the test's own process, for what no API
may do: moving a row's clock (an expiry, a lease) into the past. `?` placeholders, on
SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from typing import Any

_PLACEHOLDER = re.compile(r"\?")


def execute(db_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """The rows the statement returns (none for most writes)."""
    if db_url.startswith("sqlite:///"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
        try:
            return [tuple(row) for row in conn.execute(sql, params).fetchall()]
        finally:
            conn.close()
    numbered = iter(range(1, sql.count("?") + 1))
    statement = _PLACEHOLDER.sub(lambda _: f"${next(numbered)}", sql)
    return asyncio.run(_postgres(db_url, statement, params))


async def _postgres(db_url: str, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    import asyncpg

    conn = await asyncpg.connect(db_url)
    try:
        return [tuple(row) for row in await conn.fetch(sql, *params)]
    finally:
        await conn.close()
