"""Engine construction for the two supported stores: SQLite (WAL) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql import Insert

from core.errors import SettingsError

CUSTOM_PLANS = {"plan_cache_mode": "force_custom_plan"}
"""PostgreSQL sessions plan every execution for the tables as they are now (PostgreSQL 12+).

Otherwise a statement prepared on a pooled connection (SQLAlchemy's asyncpg driver prepares
every one) switches to a generic plan after five executions and keeps it until the table is
next analysed. Made while a table was small, on a new deployment's first minutes, that plan
scans the whole table on every call as it grows: for ingest it was three times the server's
CPU per webhook by 20,000 incidents. Planning Warden's short statements costs far less than
one such scan.
"""


def sqlite_file(url: URL) -> str | None:
    """The file of a SQLite database at ``url``; None for PostgreSQL or a database in memory
    (which only the connection that opened it holds)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return url.database


IDLE_PING_SECONDS = 30.0
"""A pooled PostgreSQL connection idle longer than this is pinged before it is lent."""


def create_engine(url: str, timeout: float = 10.0) -> AsyncEngine:
    """An async engine for ``url``; a call waits at most ``timeout`` for a lock or an answer.

    Raises ``SettingsError`` for a URL of a database Warden does not support.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = sqlite_file(parsed)
        if database is not None:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": timeout}, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() != "asyncpg":
            raise SettingsError("WARDEN_DATABASE_URL: use the postgresql+asyncpg:// driver")
        engine = create_async_engine(
            url,
            pool_size=10,
            max_overflow=10,
            pool_timeout=timeout,
            hide_parameters=True,
            connect_args={
                "timeout": timeout,
                "command_timeout": timeout,
                "server_settings": CUSTOM_PLANS,
            },
        )
        event.listen(engine.sync_engine, "checkin", _idle_from)
        event.listen(engine.sync_engine, "checkout", _check_live)
        return engine
    raise SettingsError(f"WARDEN_DATABASE_URL: unsupported database {backend!r}")


def _idle_from(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _known_closed(dbapi_connection: Any) -> bool:
    """Whether the driver knows the connection is closed (it read the server's goodbye)."""
    return bool(dbapi_connection.driver_connection.is_closed())


def _check_live(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Lend a pooled PostgreSQL connection only if it is alive; else the pool makes a new one.

    Instead of SQLAlchemy's ``pool_pre_ping``, which costs every checkout three round trips
    (``BEGIN``, ``;``, ``ROLLBACK``: most of a short query's CPU and latency), a connection
    the driver knows is closed (the server ended it: a restart, a failover, an idle timeout)
    is replaced at no cost, and only one idle for more than ``IDLE_PING_SECONDS`` is pinged
    (a silently dropped one, say by a load balancer's idle timeout). A connection that died
    silently within the last ``IDLE_PING_SECONDS`` fails its call, and the pool replaces it.
    """
    if _known_closed(dbapi_connection):
        raise DisconnectionError("the server closed this connection")
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since <= IDLE_PING_SECONDS:
        return
    try:
        dbapi_connection.ping()
    except Exception as exc:  # any failure: the pool makes a new connection
        raise DisconnectionError(f"the idle connection did not answer: {exc!r}") from exc


def create_sqlite_writer(url: str, timeout: float = 10.0) -> Engine:
    """A synchronous engine on the same SQLite file, for the one writer thread."""
    parsed = make_url(url).set(drivername="sqlite+pysqlite")
    engine = sa_create_engine(parsed, connect_args={"check_same_thread": False, "timeout": timeout})
    event.listen(engine, "connect", _sqlite_writer_connect)
    event.listen(engine, "begin", _begin_immediate)
    return engine


def _sqlite_writer_connect(dbapi_connection: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_connection, record)
    dbapi_connection.isolation_level = None  # transactions are begun explicitly below


def _begin_immediate(conn: Any) -> None:
    """Take SQLite's write lock when the transaction starts, not at its first write."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def insert_for(engine_name: str, table: Any) -> Insert:
    """The dialect's INSERT that supports ``on_conflict_do_*`` (SQLite or PostgreSQL)."""
    if engine_name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
