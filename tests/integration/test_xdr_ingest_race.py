"""Two replicas ingesting the Sentinel and the Defender XDR versions of one incident at the
same moment, on PostgreSQL: one row and one card, whichever commits first.

Replica A's transaction is held open after its ingest (it waits on a gate lock the test
holds) while replica B ingests the twin; only then is A let go. Without a guard B sees no
twin (A has not committed) and stores a second row, so the conversation gets two cards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.crypto import PayloadCipher, generate_key
from core.ingest import CARD_JOB, Item, ingest_batch
from core.models import (
    ConversationRef,
    Incident,
    IncidentSource,
    IncidentStatus,
    Severity,
    Subscription,
)
from core.store import outbox
from core.store.held import HeldConnection
from core.store.sql import RawPg, Statement
from core.store.store import Store

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

GATE = 0x5857_4741_5445  # the test's own advisory lock key
XDR_ID = "2972395"
SENTINEL_KEY = (
    "/subscriptions/s/resourcegroups/rg/providers/microsoft.securityinsights/incidents/i1"
)
DEFENDER_KEY = f"/security/incidents/{XDR_ID}"
CONVERSATION = "19:soc@thread.tacv2"


def _versions() -> tuple[Incident, Incident]:
    """The incident as Sentinel reports it (with the XDR id) and, a minute later, as Defender
    XDR does (newer, so it updates the one card)."""
    modified = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    common: dict[str, Any] = {
        "title": "Ransomware on FIN-SRV-02",
        "severity": Severity.HIGH,
        "status": IncidentStatus.NEW,
    }
    sentinel = Incident(
        key=SENTINEL_KEY, name="i1", last_modified=modified, xdr_id=XDR_ID, **common
    )
    defender = Incident(
        key=DEFENDER_KEY,
        name=XDR_ID,
        last_modified=modified + timedelta(minutes=1),
        source=IncidentSource.DEFENDER,
        xdr_id=XDR_ID,
        **common,
    )
    return sentinel, defender


def _batch(incident: Incident) -> list[Item]:
    """One version to ingest, as a polled one comes (no webhook id, no trace)."""
    return [(incident, None, {})]


@pytest.fixture
async def replicas(database_url: str) -> AsyncIterator[tuple[Store, Store]]:
    """Two stores on one migrated PostgreSQL database, with a conversation subscribed to both."""
    cipher = PayloadCipher([generate_key()])
    first, second = (Store.from_url(database_url, cipher=cipher) for _ in range(2))
    await first.upgrade()
    ref = ConversationRef(conversation_id=CONVERSATION, service_url="https://smba.example/")
    await first.save_conversation(ref)
    sources = frozenset(IncidentSource)
    await first.subscribe(Subscription(conversation_id=CONVERSATION, sources=sources), by="u1")
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def _waiting_on_locks(gate: AsyncConnection) -> int:
    """How many sessions wait on a lock right now."""
    found = await gate.scalar(
        text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        )
    )
    await gate.rollback()  # pg_stat_activity is a snapshot per transaction: look afresh
    return int(found or 0)


async def _at_least(gate: AsyncConnection, count: int) -> bool:
    """True when ``count`` sessions or more wait on a lock."""
    return await _waiting_on_locks(gate) >= count


async def _until(check: Callable[[], Awaitable[bool]]) -> None:
    """Await until ``check()`` is true (the database is polled: it has no event to await)."""
    for _ in range(500):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the database never reached the state awaited")


async def test_ingest_sentinel_and_defender_versions_racing_make_one_row_and_one_card(
    replicas: tuple[Store, Store],
) -> None:
    """A's Sentinel version is ingested but uncommitted when B ingests the Defender version:
    after both commit there is one incident row for the XDR id and one card job."""
    store_a, store_b = replicas
    sentinel, defender = _versions()

    def held_ingest(conn: RawPg, items: list[Item]) -> None:
        ingest_batch(conn, items, store_a.cipher)
        conn.run(Statement("SELECT pg_advisory_xact_lock(:key)"), {"key": GATE})

    def ingest(conn: RawPg, items: list[Item]) -> None:
        ingest_batch(conn, items, store_b.cipher)

    writer_a, writer_b = HeldConnection(store_a.engine), HeldConnection(store_b.engine)

    async with store_a.engine.connect() as gate:
        await gate.execute(text("SELECT pg_advisory_lock(:key)"), {"key": GATE})
        await gate.commit()
        first = asyncio.create_task(writer_a.run_write(held_ingest, _batch(sentinel)))
        await _until(lambda: _at_least(gate, 1))
        second = asyncio.create_task(writer_b.run_write(ingest, _batch(defender)))

        async def second_done_or_waiting() -> bool:
            return second.done() or await _waiting_on_locks(gate) >= 2

        await _until(second_done_or_waiting)
        await gate.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": GATE})
        await gate.commit()
        await asyncio.gather(first, second)
    await writer_a.close()
    await writer_b.close()

    async with store_a.engine.connect() as conn:
        rows = (
            await conn.execute(text('SELECT "key" FROM incidents WHERE xdr_id = :x'), {"x": XDR_ID})
        ).all()
    assert [row[0] for row in rows] == [SENTINEL_KEY]
    cards = [j for j in await outbox.list_jobs(store_a, None, 50) if j.kind == CARD_JOB]
    assert {job.payload["incident_key"] for job in cards} == {SENTINEL_KEY}  # one card
    stored = await store_a.incident(SENTINEL_KEY)
    assert stored is not None and stored.source is IncidentSource.DEFENDER
    assert stored.source_key == DEFENDER_KEY  # the Defender version, shown on the one card
