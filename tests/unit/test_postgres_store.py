"""What only the PostgreSQL store has: URL settings, migrations that replicas starting
together run once, and a lost database reported as StoreUnavailable (a 503), then
recovered from."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx2
import pytest

from convostack.app import create_app
from convostack.config import Config
from convostack.storage import UnsupportedDatabaseURL, migrations, open_store, redacted_url
from convostack.storage.base import ConversationRow, StoreUnavailable
from convostack.storage.postgres import PostgresSettings, PostgresStore
from convostack.testing.postgres import with_query
from convostack.testing.stack import free_port

NO_POSTGRES = (
    "no PostgreSQL for tests: give --db postgresql://... or set CONVOSTACK_TEST_POSTGRES_URL"
)


def test_pool_settings_come_from_the_url_and_the_rest_goes_to_asyncpg() -> None:
    dsn, settings = PostgresSettings.split_url(
        "postgresql://u:p@db:5433/conv?pool_max_size=20&sslmode=require&pool_timeout=2.5"
    )
    assert dsn == "postgresql://u:p@db:5433/conv?sslmode=require"
    assert (settings.pool_min_size, settings.pool_max_size, settings.pool_timeout) == (2, 20, 2.5)
    assert PostgresSettings.split_url("postgres://db/conv")[1] == PostgresSettings()
    assert isinstance(open_store("postgres://db/conv"), PostgresStore)
    assert isinstance(open_store("postgresql://db/conv?pool_min_size=0"), PostgresStore)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("pool_max_size=0", "pool_max_size"),
        ("pool_min_size=many", "pool_min_size"),
        ("pool_min_size=5&pool_max_size=2", "pool_min_size (5) is above pool_max_size (2)"),
        ("pool_timeout=-1", "pool_timeout"),
    ],
)
def test_bad_pool_settings_fail_at_start_naming_the_setting(query: str, named: str) -> None:
    with pytest.raises(UnsupportedDatabaseURL, match="pool setting") as raised:
        open_store(f"postgresql://db/conv?{query}")
    assert named in str(raised.value)


def test_logs_never_show_the_password() -> None:
    assert redacted_url("postgresql://me:s3cret@db/x?a=b") == "postgresql://me:***@db/x?a=b"
    assert redacted_url("postgresql://me@db/x") == "postgresql://me@db/x"
    assert redacted_url("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"


async def test_replicas_starting_together_migrate_once(schema_url: str) -> None:
    stores = [open_store(with_query(schema_url, pool_min_size="1")) for _ in range(6)]
    await asyncio.gather(*(s.start() for s in stores))
    try:
        await stores[0].create_conversation("o", ConversationRow("conv_m", 1, {}), [])
        assert (await stores[5].get_conversation("o", "conv_m")).id == "conv_m"
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    schema = dict(p.split("=") for p in urlsplit(schema_url).query.split("&"))["search_path"]
    conn = await asyncpg.connect(schema_url)
    try:
        rows = await conn.fetch(f"SELECT version FROM {schema}.schema_migrations ORDER BY 1")
    finally:
        await conn.close()
    assert [r[0] for r in rows] == [m.version for m in migrations.load("postgres")]


class _Proxy:
    """A TCP proxy in front of PostgreSQL that a test can cut and restore."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@contextlib.asynccontextmanager
async def _proxied(schema_url: str) -> AsyncIterator[tuple[_Proxy, str]]:
    parts = urlsplit(schema_url)
    proxy = _Proxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.open()
    netloc = parts.netloc.replace(f":{parts.port}", f":{proxy.port}")
    try:
        yield proxy, parts._replace(netloc=netloc).geturl()
    finally:
        await proxy.cut()


async def test_a_lost_database_is_unavailable_then_recovered(schema_url: str) -> None:
    async with _proxied(schema_url) as (proxy, url):
        store = open_store(with_query(url, pool_min_size="1", pool_timeout="2"))
        await store.start()
        try:
            await store.create_conversation("o", ConversationRow("conv_l", 1, {}), [])
            await proxy.cut()
            with pytest.raises(StoreUnavailable):
                await store.get_conversation("o", "conv_l")
            with pytest.raises(StoreUnavailable):  # and a new connection is refused
                await store.get_conversation("o", "conv_l")
            await proxy.open()
            assert (await store.get_conversation("o", "conv_l")).id == "conv_l"
        finally:
            await store.close()


async def test_no_database_at_start_is_unavailable_with_the_address() -> None:
    store = open_store(f"postgresql://me:s3cret@127.0.0.1:{free_port()}/x?pool_timeout=2")
    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1") as raised:
        await store.start()
    assert "s3cret" not in str(raised.value)


async def test_waiting_too_long_for_a_connection_is_unavailable(schema_url: str) -> None:
    store = PostgresStore(with_query(schema_url, pool_min_size="1", pool_max_size="1"))
    store.settings = store.settings.model_copy(update={"pool_timeout": 0.2})
    await store.start()
    try:
        async with store._connection():  # the only connection is busy
            with pytest.raises(StoreUnavailable):
                await store.get_conversation("o", "conv_w")
    finally:
        await store.close()


async def test_a_lost_database_is_a_503_in_the_openai_error_body(
    schema_url: str, tmp_path: Path
) -> None:
    async with _proxied(schema_url) as (proxy, url):
        config = Config(db=with_query(url, pool_timeout="2"), home=tmp_path)
        app = create_app(config)
        async with (
            app.lifespan(),
            httpx2.AsyncClient(
                transport=httpx2.ASGITransport(app=app), base_url="http://convostack.test"
            ) as http,
        ):
            created = await http.post("/v1/conversations", json={})
            assert created.status_code == 200
            await proxy.cut()
            lost = await http.get(f"/v1/conversations/{created.json()['id']}")
            assert lost.status_code == 503
            assert set(lost.json()["error"]) == {"message", "type", "param", "code"}
            await proxy.open()
            found = await http.get(f"/v1/conversations/{created.json()['id']}")
            assert found.status_code == 200
