"""A connection held by one hot writer on PostgreSQL, instead of one checked out per batch.

Every checkout from the pool costs PostgreSQL three round trips for its liveness ping
(``BEGIN``, ``;``, ``ROLLBACK``) before the transaction's own ``BEGIN``; a writer that commits
hundreds of batches a second (ingest) keeps its connection and pays that once. A connection
that breaks is dropped, and the write goes again, once, on a fresh one: the writes held this
way are idempotent (a committed batch sent again finds its own receipts).

The connection plans each statement for the tables as they are now (``plan_cache_mode =
force_custom_plan``). PostgreSQL otherwise switches a prepared statement to a generic plan
after five executions and keeps it until the table is next analysed: on a new deployment's
first burst, the plan made for an empty ``incidents`` table scanned the whole table for every
batch, so each batch cost more than the one before (three times the server's CPU per webhook
by 20,000 incidents). Planning a batch's few statements costs far less than one such scan.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

CUSTOM_PLANS = "SET plan_cache_mode = force_custom_plan"
"""For the session: every execution planned from the tables' current size (PostgreSQL 12+)."""

A = TypeVar("A")
R = TypeVar("R")


class HeldConnection:
    """Runs idempotent writes, each in its own transaction, on one kept connection."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None

    async def run_write(self, work: Callable[[Connection, A], R], arg: A) -> R:
        """``work(conn, arg)`` in one transaction, committed on return; sent again once on a
        new connection when the kept one turns out to be broken."""
        try:
            return await self._run(work, arg)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        return await self._run(work, arg)

    async def _run(self, work: Callable[[Connection, A], R], arg: A) -> R:
        if self._conn is None:
            self._conn = await self._connect()
        conn = self._conn
        try:
            async with conn.begin():
                return await conn.run_sync(work, arg)
        except BaseException:  # a cancelled write is rolled back; the connection stays fit
            if conn.invalidated or conn.closed:
                self._conn = None
                await conn.close()
            raise

    async def _connect(self) -> AsyncConnection:
        conn = await self._engine.connect()
        try:
            await conn.exec_driver_sql(CUSTOM_PLANS)
            await conn.commit()
        except BaseException:
            await conn.close()
            raise
        return conn

    async def close(self) -> None:
        """Give the connection back to the pool, as the pool lent it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await conn.exec_driver_sql("RESET plan_cache_mode")
            await conn.commit()
        except DBAPIError:
            await conn.invalidate()  # broken: the pool makes a new one
        finally:
            await conn.close()
