"""Several `convostack serve` processes on one database, driven through the stock
`openai` client, with the fake upstream as their model.

The PostgreSQL database comes from `--db postgresql://...` or
CONVOSTACK_TEST_POSTGRES_URL (`make test-postgres` starts a throwaway server); without
one, the tests that need it are skipped. Each run of this package gets a fresh schema.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from convostack.testing.fake_upstream import fake_upstream_server
from convostack.testing.postgres import schema_for_test
from convostack.testing.replicas import Replica, replica
from convostack.testing.upstream import FAKE_MODEL, Upstream


@pytest.fixture(scope="package")
def upstream() -> Iterator[Upstream]:
    with fake_upstream_server(models=[FAKE_MODEL]) as url:
        yield Upstream(url)


@pytest.fixture(scope="package")
def postgres_db(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL schema."""
    with schema_for_test(request.config) as url:
        yield url


@pytest.fixture(scope="package")
def replicas(postgres_db: str, upstream: Upstream) -> Iterator[tuple[Replica, Replica]]:
    """Two replicas on one PostgreSQL database."""
    with replica(postgres_db, upstream.url) as a, replica(postgres_db, upstream.url) as b:
        yield a, b
