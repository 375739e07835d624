"""The connection ingest keeps on PostgreSQL (``core.store.held``), and the pool's.

Every connection plans each statement for the tables as they are now. A statement prepared on
a long-lived connection otherwise switches to a generic plan after five executions and keeps
it until the table is next analysed; made while ``incidents`` was empty, that plan scanned the
whole table for every batch (each batch costlier than the last, on a new deployment's first
burst). The table's scan counters show which plan ran. A write cancelled mid-statement leaves
the kept connection usable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from connectors.sentinel.mapping import incident_from_resource
from core.crypto import PayloadCipher, generate_key
from core.errors import StoreUnavailable
from core.ingest import IngestResult, Item, ingest_batch
from core.store.engine import create_engine
from core.store.held import HeldConnection
from core.store.sql import RawPg, Statement
from core.store.store import Store
from sandbox.sentinel_samples import sample_incident

pytestmark = pytest.mark.postgres

FLUSH = "SELECT pg_stat_force_next_flush()"
"""Makes the session report its statistics (PostgreSQL 15 buffers them) once idle."""


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A migrated PostgreSQL store whose incident table autovacuum leaves alone (no ANALYZE
    comes to the rescue during the test)."""
    store = Store.from_url(database_url, cipher=PayloadCipher([generate_key()]))
    await store.upgrade()
    async with store.writing() as conn:
        await conn.exec_driver_sql("ALTER TABLE incidents SET (autovacuum_enabled = false)")
    yield store
    await store.close()


async def _scans(store: Store) -> tuple[int, int]:
    """The incident table's sequential and index scans so far, as the server counts them."""
    async with store.reading() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT seq_scan, coalesce(idx_scan, 0) FROM pg_stat_user_tables "
                    "WHERE relname = 'incidents'"
                )
            )
        ).one()
    return int(row[0]), int(row[1])


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_ingest_batches_after_table_grows_use_its_index_not_a_full_scan(
    store: Store,
) -> None:
    """Batches ingested while the table was empty do not leave later batches scanning it."""
    held = HeldConnection(store.engine)

    async def ingest(webhook_id: str) -> IngestResult:
        item: Item = (incident_from_resource(sample_incident()), webhook_id, {})

        def work(conn: RawPg, batch: list[Item]) -> list[IngestResult]:
            return ingest_batch(conn, batch, store.cipher)

        [result] = await held.run_write(work, [item])
        return result

    try:
        for i in range(8):  # past the five executions after which a generic plan is kept
            assert (await ingest(f"msg_early_{i}")).changed
        async with store.writing() as conn:
            await conn.exec_driver_sql(
                'INSERT INTO incidents ("key", version, severity, payload, updated_at) '
                "SELECT 'bulk-' || g, '0', 'High', md5(g::text) || md5((-g)::text), 0 "
                "FROM generate_series(1, 20000) AS g"
            )
        before = await _reported_scans(store, held, at_least=8)  # each batch reads the table
        for i in range(3):
            assert (await ingest(f"msg_late_{i}")).changed
        seq, idx = await _reported_scans(store, held, at_least=sum(before) + 3)
    finally:
        await held.close()
    assert seq == before[0], f"{seq - before[0]} full scans of 20,000 incidents for 3 batches"
    assert idx >= before[1] + 3


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_pooled_reads_after_table_grows_use_its_index_not_a_full_scan(
    store: Store,
) -> None:
    """A statement the pool's connections prepared while the table was empty is planned for
    the grown table too (the shape ingest's generic plan went wrong on: a key list)."""
    lookup = text('SELECT "key" FROM incidents WHERE "key" = ANY(CAST(:keys AS text[]))')

    async def read(keys: list[str]) -> None:
        async with store.reading() as conn:
            await conn.execute(lookup, {"keys": keys})

    for i in range(8):  # past the five executions after which a generic plan is kept
        await read([f"early-{i}", f"other-{i}"])
    async with store.writing() as conn:
        await conn.exec_driver_sql(
            'INSERT INTO incidents ("key", version, severity, payload, updated_at) '
            "SELECT 'bulk-' || g, '0', 'High', md5(g::text), 0 FROM generate_series(1, 20000) g"
        )
    before = await _reported_scans(store, None, at_least=8)
    for i in range(3):
        await read([f"bulk-{i + 1}", f"bulk-{i + 100}"])
    seq, idx = await _reported_scans(store, None, at_least=sum(before) + 3)
    assert seq == before[0], f"{seq - before[0]} full scans of 20,000 incidents for 3 reads"
    assert idx >= before[1] + 3


async def _reported_scans(
    store: Store, held: HeldConnection | None, at_least: int
) -> tuple[int, int]:
    """The scan counts once the sessions have reported ``at_least`` scans in all (a session
    reports within moments of being asked, or within a second of going idle), or as they are
    after five seconds. ``held``: the kept connection, else the pool's."""
    if held is not None:
        await held.run_write(lambda conn, _: conn.run(Statement(FLUSH), {}), None)
    else:
        async with store.reading() as conn:
            await conn.exec_driver_sql(FLUSH)
    deadline = time.monotonic() + 5
    counts = await _scans(store)
    while sum(counts) < at_least and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        counts = await _scans(store)
    return counts


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_held_connection_write_cancelled_mid_statement_next_write_succeeds(
    store: Store,
) -> None:
    """A write cancelled while its statement runs (shutdown, a timeout) rolls back and leaves
    the next write a working connection."""
    held = HeldConnection(store.engine)

    def slow(conn: RawPg, _: None) -> None:
        conn.run(Statement("INSERT INTO incidents_probe VALUES (1)"), {})
        conn.run(Statement("SELECT pg_sleep(5)"), {})

    def count(conn: RawPg, _: None) -> int:
        return int(conn.run(Statement("SELECT count(*) FROM incidents_probe"), {}).scalar())

    async with store.writing() as conn:
        await conn.exec_driver_sql("CREATE TABLE incidents_probe (n integer)")
    try:
        task = asyncio.create_task(held.run_write(slow, None))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.wait_for(held.run_write(count, None), 5) == 0
    finally:
        await held.close()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/warden",
        "postgresql+asyncpg://postgres@127.0.0.1:5432/warden_no_such_database",
    ],
    ids=["no-server", "no-database"],
)
async def test_held_connection_store_unreachable_raises_store_unavailable(url: str) -> None:
    """No server at the address, or no such database on it: the writer's caller is told the
    store is unavailable (the webhook answers 503 with Retry-After), not a driver's error."""
    engine = create_engine(url, timeout=2)
    held = HeldConnection(engine)
    try:
        with pytest.raises(StoreUnavailable):
            await held.run_write(lambda conn, _: conn.run(Statement("SELECT 1"), {}), None)
    finally:
        await held.close()
        await engine.dispose()
