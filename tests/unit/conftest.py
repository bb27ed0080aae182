"""Store fixtures: each store test runs on SQLite and on PostgreSQL.

PostgreSQL tests need a server: `--db postgresql://...` or CONVOSTACK_TEST_POSTGRES_URL
(`make test-postgres` starts a throwaway one); without one they are skipped. Each test
gets a fresh schema of that database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from convostack.storage import open_store
from convostack.storage.base import Store
from convostack.testing.postgres import schema_for_test


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with schema_for_test(request.config) as url:
        yield url


@pytest.fixture
def schema_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty schema of the test PostgreSQL server (skips without one)."""
    with schema_for_test(request.config) as url:
        yield url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = open_store(store_url)
    await opened.start()
    try:
        yield opened
    finally:
        await opened.close()
