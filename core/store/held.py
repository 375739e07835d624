"""A connection held by one hot writer on PostgreSQL, instead of one checked out per batch.

A writer that commits hundreds of batches a second (ingest) keeps its connection and pays the
pool's checkout and liveness check (``core.store.engine``) once, not per batch. A write that
fails drops the connection (a restart, a failover) and goes again, once, on a fresh one: the
writes held this way are idempotent (a committed batch sent again finds its own receipts).

The writes run straight on asyncpg (``core.store.sql.RawPg``), in a transaction of asyncpg's
own: a round trip through SQLAlchemy's execution costs about four times the CPU of asyncpg's,
and a batch makes four (``BEGIN``, two statements, ``COMMIT``).

Like every connection of the engine, it plans each statement for the tables as they are now
(``core.store.engine.CUSTOM_PLANS``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import asyncpg
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util import greenlet_spawn

from core.errors import StoreUnavailable
from core.store.sql import RawPg

A = TypeVar("A")
R = TypeVar("R")

_DATABASE_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # a protocol caught mid-message by the server's goodbye
    OSError,
)


class HeldConnection:
    """Runs idempotent writes, each in its own transaction, on one kept connection."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._driver: asyncpg.Connection | None = None

    async def run_write(self, work: Callable[[RawPg, A], R], arg: A) -> R:
        """``work(conn, arg)`` in one transaction, committed on return (synchronous ``work``
        runs in a greenlet: its statements are awaited for it). A database failure raises
        ``StoreUnavailable``.

        After a failure the connection is dropped (its state is unknown: a server that ended
        it may be half-way through saying so) and the write goes again, once, on a new one.
        """
        try:
            return await self._run(work, arg)
        except _DATABASE_ERRORS:
            await self._drop()
        try:
            return await self._run(work, arg)
        except _DATABASE_ERRORS as exc:
            await self._drop()
            raise StoreUnavailable(f"store write failed: {exc!r}") from exc

    async def _run(self, work: Callable[[RawPg, A], R], arg: A) -> R:
        try:
            driver = self._driver or await self._connect()
        except (*_DATABASE_ERRORS, SQLAlchemyError) as exc:
            raise StoreUnavailable(f"the store cannot be reached: {exc!r}") from exc
        async with driver.transaction():
            return await greenlet_spawn(work, RawPg(driver), arg)

    async def _connect(self) -> asyncpg.Connection:
        conn = await self._engine.connect()
        try:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert isinstance(driver, asyncpg.Connection)
        except BaseException:
            await conn.close()
            raise
        self._conn, self._driver = conn, driver
        return driver

    async def _drop(self) -> None:
        conn, self._conn, self._driver = self._conn, None, None
        if conn is not None:
            await conn.invalidate()
            await conn.close()

    async def close(self) -> None:
        """Give the connection back to the pool."""
        conn, self._conn, self._driver = self._conn, None, None
        if conn is not None:
            await conn.close()
