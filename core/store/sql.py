"""Hot-path SQL: one statement text, run straight on the driver, SQLite's or PostgreSQL's.

SQLAlchemy's per-statement overhead dwarfs SQLite's own work on the busiest writes (ingest),
and costs about four times asyncpg's CPU for a PostgreSQL round trip. A ``Statement`` keeps
one SQL text with ``:named`` parameters. On SQLite it goes straight to the ``sqlite3``
connection (which understands ``:named``) inside the caller's SQLAlchemy transaction; on
PostgreSQL to asyncpg (``$1``, ``$2``…) through ``RawPg``, inside an asyncpg transaction
(``core.store.held``).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import SimpleNamespace
from typing import Any

import asyncpg
from sqlalchemy import Connection
from sqlalchemy.util import await_only

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@dataclass(frozen=True)
class Rows:
    """What a statement returned: its rows and the number of rows it changed."""

    rows: Sequence[Sequence[Any]]
    rowcount: int

    def scalar(self) -> Any:
        """The first column of the first row, or ``None``."""
        return self.rows[0][0] if self.rows else None

    def named(self, columns: Sequence[str]) -> list[SimpleNamespace]:
        """The rows with their values as attributes named by ``columns`` (the statement's
        select list, in order), as SQLAlchemy's rows give them."""
        return [SimpleNamespace(**dict(zip(columns, row, strict=True))) for row in self.rows]


@dataclass(frozen=True)
class Statement:
    """One SQL text with ``:named`` parameters."""

    sql: str

    @cached_property
    def numbered(self) -> tuple[str, tuple[str, ...]]:
        """The text with asyncpg's ``$1``, ``$2``… for the named parameters, and their names
        in that order (``::type`` casts stay; a string literal must not hold ``:name``)."""
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        return _NAMED.sub(number, self.sql), tuple(names)

    def run(self, conn: Connection | RawPg | sqlite3.Connection, params: dict[str, Any]) -> Rows:
        """Execute once with ``params`` in ``conn``'s transaction (a ``sqlite3`` connection
        of its own: in its own, ended when the rows are read)."""
        if isinstance(conn, RawPg):
            return conn.run(self, params)
        driver = conn if isinstance(conn, sqlite3.Connection) else _sqlite(conn)
        cursor = driver.execute(self.sql, params)
        return Rows(cursor.fetchall(), cursor.rowcount)

    async def fetch(self, driver: asyncpg.Connection, params: dict[str, Any]) -> Rows:
        """Execute once with ``params`` on an asyncpg connection, awaited (no greenlet)."""
        sql, names = self.numbered
        rows = await driver.fetch(sql, *(params[name] for name in names))
        return Rows(rows, len(rows))

    def run_many(self, conn: Connection | RawPg, params: Iterable[dict[str, Any]]) -> None:
        """Execute once per parameter set (``executemany``)."""
        batch = list(params)
        if not batch:
            return
        if isinstance(conn, RawPg):
            conn.run_many(self, batch)
        else:
            _sqlite(conn).executemany(self.sql, batch)


def _sqlite(conn: Connection) -> sqlite3.Connection:
    """The ``sqlite3`` connection under a SQLAlchemy one (PostgreSQL goes through ``RawPg``)."""
    driver = conn.connection.driver_connection
    if not isinstance(driver, sqlite3.Connection):
        raise TypeError("a Statement runs on SQLite's connection or on RawPg (PostgreSQL)")
    return driver


def in_list(name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """An ``IN (...)`` parameter list for ``values``: the SQL fragment and its parameters."""
    params = {f"{name}{i}": value for i, value in enumerate(values)}
    return "(" + ", ".join(f":{key}" for key in params) + ")", params


@dataclass(frozen=True)
class RawPg:
    """An asyncpg connection inside a transaction, for synchronous code that runs in a
    SQLAlchemy greenlet (``greenlet_spawn``): each statement goes straight to asyncpg, one
    round trip for a fraction of the CPU SQLAlchemy's execution takes."""

    driver: asyncpg.Connection

    def run(self, statement: Statement, params: dict[str, Any]) -> Rows:
        """Execute ``statement`` once with ``params``."""
        return await_only(statement.fetch(self.driver, params))

    def run_many(self, statement: Statement, batch: list[dict[str, Any]]) -> None:
        """Execute ``statement`` once per parameter set, pipelined."""
        sql, names = statement.numbered
        await_only(self.driver.executemany(sql, [[p[name] for name in names] for p in batch]))
