"""``Store.read`` and ``read_many``: the short lookups of the card path, straight on the
driver; and ``Store.reading``, one snapshot for the reads still made through SQLAlchemy.

On SQLite they run on a read-only connection of the event loop's own thread; they must see
every committed write at once (the writer thread's and aiosqlite's), never hold a read
transaction open (it would stop the WAL from being checkpointed), and refuse to write. An
unreachable store is ``StoreUnavailable`` on both databases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from connectors.sentinel.mapping import incident_from_resource
from core.crypto import PayloadCipher, generate_key
from core.errors import StoreUnavailable
from core.ingest import IngestWriter
from core.models import Incident
from core.store.schema import incidents
from core.store.sql import Statement
from core.store.store import Store, version_key
from sandbox.sentinel_samples import sample_incident

COUNT = Statement("SELECT count(*) FROM incidents")


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A migrated store on SQLite or PostgreSQL."""
    store = Store.from_url(database_url, timeout=2, cipher=PayloadCipher([generate_key()]))
    await store.upgrade()
    yield store
    await store.close()


async def _ingest(store: Store, incident: Incident) -> None:
    """Store ``incident`` as a webhook does (SQLite's writer thread, PostgreSQL's kept
    connection)."""
    writer = IngestWriter(store, on_commit=lambda: None)
    await writer.start()
    try:
        assert (await writer.submit(incident, f"msg_{incident.name}")).changed
    finally:
        await writer.stop()


def _row(store: Store, incident: Incident) -> dict[str, object]:
    """``incident``'s row in ``incidents``."""
    return {
        "key": incident.key,
        "version": version_key(incident),
        "severity": incident.severity.value,
        "payload": store.cipher.encrypt(incident.model_dump_json()),
        "updated_at": 0.0,
    }


async def _insert_pooled(store: Store, incident: Incident) -> None:
    """Store ``incident`` through the pool's connections (aiosqlite's on SQLite)."""
    async with store.writing() as conn:
        await conn.execute(incidents.insert().values(**_row(store, incident)))


async def test_read_sees_each_committed_write_at_once(store: Store) -> None:
    """A lookup right after a commit finds its row, whichever connection committed it."""
    first = incident_from_resource(sample_incident(title="Written by the writer"))
    second = incident_from_resource(sample_incident(title="Written through the pool"))
    assert await store.incident(first.key) is None
    await _ingest(store, first)
    assert await store.incident(first.key) == first
    assert (await store.read(COUNT, {})).scalar() == 1
    await _insert_pooled(store, second)
    assert await store.incident(second.key) == second
    assert (await store.read(COUNT, {})).scalar() == 2


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_reads_leave_no_transaction_open_wal_checkpoints_fully(
    store: Store,
) -> None:
    """After lookups (found or not) the WAL can be checkpointed and emptied: the read
    connection holds no snapshot that would keep the writer's pages in the log."""
    for i in range(3):
        await _ingest(store, incident_from_resource(sample_incident(title=f"n{i}")))
        await store.incident("/no/such/incident")
        assert (await store.read(COUNT, {})).scalar() == i + 1
    async with store.writing() as conn:
        busy, _log, _moved = (await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))).one()
    assert busy == 0


KEYS = Statement('SELECT "key" FROM incidents ORDER BY "key"')


async def test_read_many_reads_each_statement_after_the_last_commit(store: Store) -> None:
    """Several lookups taken together: each statement's rows, seeing every earlier commit,
    and afterwards the WAL still checkpoints fully (the snapshot ended with them)."""
    first = incident_from_resource(sample_incident(title="One"))
    await _ingest(store, first)
    count, keys = await store.read_many([(COUNT, {}), (KEYS, {})])
    assert (count.scalar(), [row[0] for row in keys.rows]) == (1, [first.key])
    second = incident_from_resource(sample_incident(title="Two"))
    await _insert_pooled(store, second)
    count, keys = await store.read_many([(COUNT, {}), (KEYS, {})])
    assert (count.scalar(), len(keys.rows)) == (2, 2)
    if store.dialect == "sqlite":
        async with store.writing() as conn:
            busy, _log, _moved = (await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))).one()
        assert busy == 0


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_read_many_is_read_only_on_postgresql(store: Store) -> None:
    """The lookups' transaction is read-only: a statement that writes fails, changing
    nothing, and the next lookups go on."""
    await _ingest(store, incident_from_resource(sample_incident()))
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        await store.read_many([(COUNT, {}), (Statement("DELETE FROM incidents"), {})])
    assert [rows.scalar() for rows in await store.read_many([(COUNT, {})])] == [1]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_read_connection_refuses_writes(store: Store) -> None:
    """The lookups' connection is read-only: a statement that writes fails, changing nothing."""
    with pytest.raises(StoreUnavailable, match="readonly"):
        await store.read(Statement("DELETE FROM incidents"), {})
    await _ingest(store, incident_from_resource(sample_incident()))
    assert (await store.read(COUNT, {})).scalar() == 1


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/warden",
        "postgresql+asyncpg://postgres@127.0.0.1:5432/warden_no_such_database",
    ],
    ids=["no-server", "no-database"],
)
async def test_read_store_unreachable_raises_store_unavailable(url: str) -> None:
    """No PostgreSQL at the address, or no such database: ``StoreUnavailable``."""
    store = Store.from_url(url, timeout=2)
    try:
        with pytest.raises(StoreUnavailable):
            await store.incident("/any")
        with pytest.raises(StoreUnavailable):
            await store.read_many([(COUNT, {})])
    finally:
        await store.close()


async def test_read_sqlite_file_gone_raises_store_unavailable(tmp_path: Path) -> None:
    """A SQLite database whose directory cannot be opened: ``StoreUnavailable``."""
    store = Store.from_url(f"sqlite+aiosqlite:///{tmp_path / 'none' / 'warden.db'}", timeout=2)
    (tmp_path / "none").rmdir()
    try:
        with pytest.raises(StoreUnavailable):
            await store.incident("/any")
    finally:
        await store.close()


async def test_read_sqlite_in_memory_goes_through_the_pool_connection() -> None:
    """An in-memory SQLite database exists only on the pool's connection: lookups use it
    (a connection of their own would open another, empty database)."""
    store = Store.from_url("sqlite+aiosqlite:///:memory:", timeout=2)
    try:
        await store.upgrade()
        assert (await store.read(COUNT, {})).scalar() == 0
        assert await store.incident("/any") is None
        assert [rows.scalar() for rows in await store.read_many([(COUNT, {})] * 2)] == [0, 0]
    finally:
        await store.close()


async def test_reading_sees_one_state_across_its_statements(store: Store) -> None:
    """``Store.reading``: writes committed while a read is under way (by the writer thread
    and through the pool) are not seen by its later statements; the next read sees them all.
    (A card drawn from the request, then its decisions, once tallied an approval under the
    version before it, and the next reviewer's click was refused as stale.)"""
    await _ingest(store, incident_from_resource(sample_incident(title="Before the read")))
    async with store.reading() as conn:
        assert (await conn.execute(text(COUNT.sql))).scalar() == 1
        await _ingest(store, incident_from_resource(sample_incident(title="By the writer")))
        await _insert_pooled(store, incident_from_resource(sample_incident(title="Pooled")))
        assert (await conn.execute(text(COUNT.sql))).scalar() == 1
        assert len((await conn.execute(text(KEYS.sql))).all()) == 1
    async with store.reading() as conn:
        assert (await conn.execute(text(COUNT.sql))).scalar() == 3


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_reading_refuses_writes_on_postgresql(store: Store) -> None:
    """A write slipped into ``Store.reading`` fails (a read-only transaction), leaving
    nothing."""
    incident = incident_from_resource(sample_incident(title="Not a read"))
    with pytest.raises(DBAPIError, match="read-only transaction"):
        async with store.reading() as conn:
            await conn.execute(incidents.insert().values(**_row(store, incident)))
    assert (await store.read(COUNT, {})).scalar() == 0
