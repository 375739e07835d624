"""Short lookups straight on the driver, for ``Store.read``.

On SQLite a lookup runs on a read-only connection of the event loop's own thread, with no
thread hop: in WAL mode it takes microseconds and never waits for the writer, where a hop to
aiosqlite's thread for each statement, fetch and rollback costs a millisecond of CPU. On
PostgreSQL it goes straight to asyncpg on a pooled connection. Either way each lookup is one
statement, in autocommit: it sees every write committed before it and holds no snapshot
open (which would keep SQLite's WAL from being checkpointed).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import asyncpg
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.errors import StoreUnavailable
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
        self._sqlite: sqlite3.Connection | None = None

    @property
    def available(self) -> bool:
        """False for an in-memory SQLite database (only the pool's connection holds it)."""
        database = self._engine.url.database
        return self._engine.dialect.name != "sqlite" or database not in (None, "", ":memory:")

    async def read(self, statement: Statement, params: dict[str, Any]) -> Rows:
        """The rows of ``statement``; ``StoreUnavailable`` when the database cannot be read."""
        if self._engine.dialect.name == "sqlite":
            try:
                return statement.run(self._sqlite_connection(), params)
            except sqlite3.OperationalError as exc:  # cannot open, locked, read-only
                raise StoreUnavailable(f"store read failed: {exc!r}") from exc
        try:
            async with self._engine.connect() as conn:
                raw = await conn.get_raw_connection()
                try:
                    return await statement.fetch(raw.driver_connection, params)
                except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError) as exc:
                    raise StoreUnavailable(f"store read failed: {exc!r}") from exc
        except (SQLAlchemyError, OSError) as exc:  # no server, no such database
            raise StoreUnavailable(f"the store cannot be reached: {exc!r}") from exc

    def close(self) -> None:
        """Close SQLite's read connection (a later lookup opens it again)."""
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None

    def _sqlite_connection(self) -> sqlite3.Connection:
        if self._sqlite is None:
            connection = sqlite3.connect(  # WAL readers wait only in rare moments
                str(self._engine.url.database),
                timeout=min(self._timeout, READ_WAIT_SECONDS),
                isolation_level=None,
                check_same_thread=False,
            )
            connection.execute("PRAGMA query_only = ON")
            self._sqlite = connection
        return self._sqlite
