"""The PostgreSQL store's connection pool (postgres_pool.Pool) against a real server:
borrowers queue when every connection is out, a connection cut off mid-query is closed
and replaced, one that only saw an SQL error is kept, and closing waits for borrowers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from convostack.storage.postgres_pool import Pool, PoolClosed


@pytest.fixture
async def pool(schema_url: str) -> AsyncIterator[Pool]:
    opened = Pool(lambda: asyncpg.connect(schema_url), min_size=1, max_size=2, timeout=0.3)
    await opened.start()
    try:
        yield opened
    finally:
        await opened.close()


async def _pid(pool: Pool) -> int:
    conn = await pool.acquire()
    try:
        pid: int = await conn.fetchval("SELECT pg_backend_pid()")
    finally:
        pool.release(conn)
    return pid


async def test_borrowers_past_max_size_wait_then_time_out(pool: Pool) -> None:
    first, second = await pool.acquire(), await pool.acquire()
    pids = {await c.fetchval("SELECT pg_backend_pid()") for c in (first, second)}
    waiting = asyncio.ensure_future(pool.acquire())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    pool.release(first)
    assert await waiting is first  # handed straight to the waiter
    with pytest.raises(TimeoutError):
        await pool.acquire()
    pool.release(first)
    pool.release(second)
    assert await _pid(pool) in pids  # both kept, no third opened


async def test_an_sql_error_keeps_the_connection(pool: Pool) -> None:
    pid = await _pid(pool)
    conn = await pool.acquire()
    with pytest.raises(asyncpg.UndefinedTableError):
        await conn.fetch("SELECT * FROM no_such_table")
    pool.release(conn, asyncpg.UndefinedTableError("no_such_table"))
    assert await _pid(pool) == pid


async def test_a_query_cancelled_midway_closes_its_connection(pool: Pool) -> None:
    pid = await _pid(pool)
    conn = await pool.acquire()

    async def slow() -> None:
        try:
            await conn.execute("SELECT pg_sleep(10)")
        except asyncio.CancelledError as exc:
            pool.release(conn, exc)
            raise

    task = asyncio.ensure_future(slow())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert conn.is_closed()
    assert await _pid(pool) != pid  # a new connection, opened on demand


async def test_a_waiter_cancelled_passes_its_turn_on(pool: Pool) -> None:
    first, second = await pool.acquire(), await pool.acquire()
    cancelled = asyncio.ensure_future(pool.acquire())
    waiting = asyncio.ensure_future(pool.acquire())
    await asyncio.sleep(0.01)
    cancelled.cancel()
    pool.release(first)
    assert await waiting is first
    for conn in (first, second):
        pool.release(conn)


async def test_close_waits_for_borrowed_connections(pool: Pool) -> None:
    conn = await pool.acquire()
    closing = asyncio.ensure_future(pool.close())
    await asyncio.sleep(0.05)
    assert not closing.done()
    with pytest.raises(PoolClosed):
        await pool.acquire()
    pool.release(conn)
    await closing
    assert conn.is_closed()
