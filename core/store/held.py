"""A connection held by one hot writer on PostgreSQL, instead of one checked out per batch.

Every checkout from the pool costs PostgreSQL three round trips for its liveness ping
(``BEGIN``, ``;``, ``ROLLBACK``) before the transaction's own ``BEGIN``; a writer that commits
hundreds of batches a second (ingest) keeps its connection and pays that once. A connection
that breaks is dropped, and the write goes again, once, on a fresh one: the writes held this
way are idempotent (a committed batch sent again finds its own receipts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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
            self._conn = await self._engine.connect()
        conn = self._conn
        try:
            async with conn.begin():
                return await conn.run_sync(work, arg)
        except BaseException:
            if conn.invalidated or conn.closed:
                self._conn = None
                await conn.close()
            raise

    async def close(self) -> None:
        """Give the connection back."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
