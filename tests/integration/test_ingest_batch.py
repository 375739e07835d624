"""One group-commit batch gives the outcome of its items stored one by one, in order.

Concurrent webhooks share a batch, so a batch may hold a redelivery of its own item or two
versions of one incident; these tests write such batches into a real store (SQLite and
PostgreSQL) and check what a user would see: answers, the stored version and the card jobs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import Connection, select

from connectors.sentinel.mapping import incident_from_resource
from core.crypto import PayloadCipher, generate_key
from core.ingest import IngestResult, IngestWriter, Item, ingest_batch
from core.models import ConversationRef, Incident, Severity, Subscription
from core.store.held import HeldConnection
from core.store.schema import outbox
from core.store.sql import RawPg
from core.store.store import Store
from sandbox.sentinel_samples import sample_incident

CHANNEL = "19:soc@thread.tacv2"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A migrated store with one channel subscribed to High incidents and above."""
    store = Store.from_url(database_url, cipher=PayloadCipher([generate_key()]))
    await store.upgrade()
    await store.save_conversation(
        ConversationRef(conversation_id=CHANNEL, service_url="https://smba.example/teams/")
    )
    await store.subscribe(
        Subscription(conversation_id=CHANNEL, min_severity=Severity.HIGH), by="test"
    )
    yield store
    await store.close()


def _incident(severity: str = "High") -> Incident:
    return incident_from_resource(sample_incident(severity=severity))


def _later(incident: Incident, minutes: int, severity: Severity | None = None) -> Incident:
    return incident.model_copy(
        update={
            "last_modified": incident.last_modified + timedelta(minutes=minutes),
            "etag": f'"v{minutes}"',
            "severity": severity or incident.severity,
        }
    )


async def _write(store: Store, items: list[Item]) -> list[IngestResult]:
    """One batch, written as ``IngestWriter`` writes it: on SQLite's writer thread, or on
    PostgreSQL straight through asyncpg on a kept connection."""

    def work(conn: Connection | RawPg, batch: list[Item]) -> list[IngestResult]:
        return ingest_batch(conn, batch, store.cipher)

    if store.dialect != "postgresql":
        return await store.run_write(work, items)
    held = HeldConnection(store.engine)
    try:
        return await held.run_write(work, items)
    finally:
        await held.close()


async def _card_jobs(store: Store) -> list[str]:
    async with store.reading() as conn:
        rows = await conn.execute(select(outbox.c.ordering_key).order_by(outbox.c.id))
    return [row[0] for row in rows]


async def test_ingest_batch_same_webhook_id_twice_second_duplicate_one_job(store: Store) -> None:
    """A redelivery in the same batch is answered as a duplicate and causes no second job."""
    incident = _incident()
    results = await _write(store, [(incident, "msg_a", {}), (incident, "msg_a", {})])
    assert [(r.duplicate, r.changed, r.jobs) for r in results] == [
        (False, True, 1),
        (True, False, 0),
    ]
    assert results[1].incident_name == incident.name
    assert len(await _card_jobs(store)) == 1


async def test_ingest_batch_id_seen_in_earlier_batch_duplicate_names_stored_incident(
    store: Store,
) -> None:
    """A webhook id committed before is a duplicate, named after the incident it first carried."""
    first, other = _incident(), _incident()
    await _write(store, [(first, "msg_b", {})])
    results = await _write(store, [(other, "msg_b", {}), (other, "msg_c", {})])
    assert results[0] == IngestResult(first.name, duplicate=True, changed=False)
    assert results[1].changed
    assert await store.incident(other.key) == other


async def test_ingest_batch_newer_then_older_version_newest_stored_older_stale(
    store: Store,
) -> None:
    """Of two versions in one batch, the newer is stored whatever the order; the older is stale."""
    old = _incident()
    new = _later(old, 5)
    results = await _write(store, [(new, "msg_new", {}), (old, "msg_old", {})])
    assert [(r.changed, r.jobs) for r in results] == [(True, 1), (False, 0)]
    assert await store.incident(old.key) == new


async def test_ingest_batch_two_newer_versions_both_changed_one_pending_card_job(
    store: Store,
) -> None:
    """Versions in order both count as changes; the card waits in one job, holding the newest."""
    base = _incident()
    await _write(store, [(base, None, {})])
    results = await _write(store, [(_later(base, 1), None, {}), (_later(base, 2), None, {})])
    assert [(r.changed, r.jobs) for r in results] == [(True, 0), (True, 0)]
    assert len(await _card_jobs(store)) == 1, "the job of the first version is still pending"
    assert await store.incident(base.key) == _later(base, 2)


async def test_ingest_batch_severity_raised_within_batch_card_job_for_new_subscriber(
    store: Store,
) -> None:
    """A Low incident raised to High in the same batch reaches the High channel once."""
    low = _incident("Low")
    results = await _write(
        store, [(low, None, {}), (_later(low, 1, Severity.HIGH), None, {"traceparent": "t"})]
    )
    assert [r.jobs for r in results] == [0, 1]
    assert await _card_jobs(store) == [f"card:{low.key}|{CHANNEL}"]


async def test_ingest_writer_connection_killed_between_batches_next_webhook_still_stored(
    store: Store,
) -> None:
    """The writer keeps one connection on PostgreSQL; when the server ends it (a restart, a
    failover), the next webhook is still stored and answered, on a new connection."""
    writer = IngestWriter(store, on_commit=lambda: None)
    await writer.start()
    try:
        first, second = _incident(), _incident()
        assert (await writer.submit(first, "msg_before")).changed
        if store.dialect == "postgresql":
            await _end_other_sessions(store)
        result = await writer.submit(second, "msg_after")
        assert (result.duplicate, result.changed, result.jobs) == (False, True, 1)
        again = await writer.submit(second, "msg_after")
        assert again.duplicate
    finally:
        await writer.stop()
    assert await store.incident(second.key) == second
    assert len(await _card_jobs(store)) == 2


async def _end_other_sessions(store: Store) -> None:
    """End every session of the database but this one, as a server restart would."""
    async with store.engine.connect() as admin:
        ended = (
            await admin.exec_driver_sql(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()) AS t"
            )
        ).scalar_one()
    assert ended >= 1
