"""Pooled PostgreSQL connections are lent only alive (``core.store.engine._check_live``).

No ping on every checkout (it cost three round trips, most of a short query's CPU): a
connection the server ended is replaced when it is next lent, and one that sat idle is pinged
first, so one that died without the driver noticing is replaced too. The server ends the
sessions here as a restart or a failover would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from core.crypto import PayloadCipher, generate_key
from core.store import engine as engine_module
from core.store.store import Store

pytestmark = pytest.mark.postgres

SESSIONS = 4


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A migrated PostgreSQL store whose pool holds ``SESSIONS`` connections."""
    store = Store.from_url(database_url, timeout=5, cipher=PayloadCipher([generate_key()]))
    await store.upgrade()
    await _use_sessions(store)
    yield store
    await store.close()


async def _use_sessions(store: Store) -> None:
    """Check ``SESSIONS`` connections out at once (so the pool keeps that many), read through
    each, and give them back."""

    async def one() -> None:
        async with store.reading() as conn:
            await conn.exec_driver_sql("SELECT pg_sleep(0.05)")

    await asyncio.gather(*(one() for _ in range(SESSIONS)))


async def _end_sessions(database_url: str) -> int:
    """End every session of the store's database from outside, as a server restart would."""
    name = database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        ended = await admin.fetchval(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1) AS t",
            name,
        )
    finally:
        await admin.close()
    return int(ended)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_pooled_sessions_ended_by_server_next_calls_succeed(
    store: Store, database_url: str
) -> None:
    """After the server ended every pooled session, the next calls (as many at once as the
    pool holds) are answered on new connections, none fails."""
    assert await _end_sessions(database_url) >= SESSIONS
    await asyncio.sleep(0.2)  # the drivers read the server's goodbye
    results = await asyncio.gather(*(store.incident(f"key-{i}") for i in range(SESSIONS * 2)))
    assert results == [None] * (SESSIONS * 2)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_idle_pooled_session_dead_unnoticed_is_pinged_and_replaced(
    store: Store, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pooled session that died while idle without its driver noticing (a dropped network
    path looks like this) is pinged before it is lent, and replaced: the call succeeds."""
    assert await _end_sessions(database_url) >= SESSIONS
    await asyncio.sleep(0.2)
    monkeypatch.setattr(engine_module, "_known_closed", lambda _conn: False)  # never arrived
    monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 0.0)
    results = await asyncio.gather(*(store.incident(f"key-{i}") for i in range(SESSIONS)))
    assert results == [None] * SESSIONS
