"""Short lookups straight on the driver, for ``Store.read`` and ``Store.read_many``.

On SQLite a lookup runs on a read-only connection of the event loop's own thread, with no
thread hop: in WAL mode it takes microseconds and never waits for the writer, where a hop to
aiosqlite's thread for each statement, fetch and rollback costs a millisecond of CPU. On
PostgreSQL it goes straight to asyncpg on a pooled connection. A lookup sees every write
committed before it; a few taken together (``read_many``) share one snapshot, which ends
with them, so none is held open (it would keep SQLite's WAL from being checkpointed).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import asyncpg
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.errors import StoreUnavailable
from core.store.engine import sqlite_file
from core.store.sql import Rows, Statement

READ_WAIT_SECONDS = 1.0
"""The longest a SQLite lookup on the event loop's thread waits for a lock (WAL readers
wait only while the log is being reset); past it the store is unavailable, as when busy."""


class DirectReader:
    """Runs one-statement lookups on ``engine``'s database without SQLAlchemy's execution;
    a lock or an answer is waited for at most ``timeout`` seconds."""

    def __init__(self, engine: AsyncEngine, timeout: float) -> None:
        self._engine = engine
        self._timeout = timeout
        self._lite: sqlite3.Connection | None = None

    @property
    def available(self) -> bool:
        """False for an in-memory SQLite database (only the pool's connection holds it)."""
        return self._engine.dialect.name != "sqlite" or sqlite_file(self._engine.url) is not None

    async def read(self, statement: Statement, params: dict[str, Any]) -> Rows:
        """The rows of ``statement``; ``StoreUnavailable`` when the database cannot be read."""
        if self._engine.dialect.name == "sqlite":
            with self._sqlite() as lite:
                return statement.run(lite, params)
        async with self._postgres() as driver:
            return await statement.fetch(driver, params)

    async def read_many(self, reads: Sequence[tuple[Statement, dict[str, Any]]]) -> list[Rows]:
        """The rows of each statement, all read in one snapshot (none sees a write committed
        between two of them); ``StoreUnavailable`` when the database cannot be read."""
        if self._engine.dialect.name == "sqlite":
            with self._sqlite() as lite:
                lite.execute("BEGIN")  # no await until COMMIT: no other lookup runs in it
                try:
                    return [statement.run(lite, params) for statement, params in reads]
                finally:
                    lite.execute("COMMIT")
        async with (
            self._postgres() as driver,
            driver.transaction(isolation="repeatable_read", readonly=True),
        ):
            return [await statement.fetch(driver, params) for statement, params in reads]

    def close(self) -> None:
        """Close SQLite's read connection (a later lookup opens it again)."""
        if self._lite is not None:
            self._lite.close()
            self._lite = None

    @contextlib.contextmanager
    def _sqlite(self) -> Iterator[sqlite3.Connection]:
        """SQLite's read connection; what fails in it as ``StoreUnavailable``."""
        try:
            yield self._sqlite_connection()
        except sqlite3.OperationalError as exc:  # cannot open, locked, read-only
            raise StoreUnavailable(f"store read failed: {exc!r}") from exc

    @contextlib.asynccontextmanager
    async def _postgres(self) -> AsyncIterator[asyncpg.Connection]:
        """The asyncpg connection of a pooled one; what fails in it as ``StoreUnavailable``."""
        try:
            async with self._engine.connect() as conn:
                driver: asyncpg.Connection = (await conn.get_raw_connection()).driver_connection
                try:
                    yield driver
                except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError) as exc:
                    raise StoreUnavailable(f"store read failed: {exc!r}") from exc
        except (SQLAlchemyError, OSError) as exc:  # no server, no such database
            raise StoreUnavailable(f"the store cannot be reached: {exc!r}") from exc

    def _sqlite_connection(self) -> sqlite3.Connection:
        if self._lite is None:
            connection = sqlite3.connect(  # WAL readers wait only in rare moments
                str(self._engine.url.database),
                timeout=min(self._timeout, READ_WAIT_SECONDS),
                isolation_level=None,
                check_same_thread=False,
            )
            connection.execute("PRAGMA query_only = ON")
            self._lite = connection
        return self._lite
