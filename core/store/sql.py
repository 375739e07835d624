"""Hot-path SQL: one statement text, run raw on SQLite and through SQLAlchemy elsewhere.

SQLAlchemy's per-statement overhead dwarfs SQLite's own work on the busiest writes (ingest).
A ``Statement`` keeps one SQL text with ``:named`` parameters; on SQLite it goes straight to
the ``sqlite3`` connection (which understands ``:named``), on PostgreSQL through ``text()``.
Both run inside the caller's SQLAlchemy transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, TextClause, text


@dataclass(frozen=True)
class Rows:
    """What a statement returned: its rows and the number of rows it changed."""

    rows: Sequence[Sequence[Any]]
    rowcount: int

    def scalar(self) -> Any:
        """The first column of the first row, or ``None``."""
        return self.rows[0][0] if self.rows else None


@dataclass(frozen=True)
class Statement:
    """One SQL text with ``:named`` parameters."""

    sql: str

    @cached_property
    def clause(self) -> TextClause:
        """The SQLAlchemy ``text()`` of the statement, made on first use: SQLite never needs
        it, and building one per batch (``IN`` lists vary) cost more than running it."""
        return text(self.sql)

    def run(self, conn: Connection, params: dict[str, Any]) -> Rows:
        """Execute once with ``params`` in ``conn``'s transaction."""
        if conn.dialect.name == "sqlite":
            cursor = conn.connection.driver_connection.execute(self.sql, params)  # type: ignore[union-attr]
            return Rows(cursor.fetchall(), cursor.rowcount)
        result = conn.execute(self.clause, params)
        rows = list(result.fetchall()) if result.returns_rows else []
        return Rows(rows, result.rowcount)

    def run_many(self, conn: Connection, params: Iterable[dict[str, Any]]) -> None:
        """Execute once per parameter set (``executemany``)."""
        batch = list(params)
        if not batch:
            return
        if conn.dialect.name == "sqlite":
            conn.connection.driver_connection.executemany(self.sql, batch)  # type: ignore[union-attr]
        else:
            conn.execute(self.clause, batch)


def in_list(name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """An ``IN (...)`` parameter list for ``values``: the SQL fragment and its parameters."""
    params = {f"{name}{i}": value for i, value in enumerate(values)}
    return "(" + ", ".join(f":{key}" for key in params) + ")", params
