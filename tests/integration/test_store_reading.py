"""``Store.reading``: the statements of one read see one state of the database.

A card is drawn from several statements (the request, then its decisions); a write committed
between two of them once drew a reviewers' card that tallied an approval under the version
before it, so the next reviewer's click was refused as stale.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import DBAPIError

from connectors.sentinel.mapping import incident_from_resource
from core.crypto import PayloadCipher, generate_key
from core.store.schema import incidents
from core.store.store import Store, version_key
from sandbox.sentinel_samples import sample_incident

COUNT = select(func.count()).select_from(incidents)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A migrated store on SQLite or PostgreSQL."""
    store = Store.from_url(database_url, timeout=2, cipher=PayloadCipher([generate_key()]))
    await store.upgrade()
    yield store
    await store.close()


def _row(store: Store, title: str) -> dict[str, object]:
    incident = incident_from_resource(sample_incident(title=title))
    return {
        "key": incident.key,
        "version": version_key(incident),
        "severity": incident.severity.value,
        "payload": store.cipher.encrypt(incident.model_dump_json()),
        "updated_at": 0.0,
    }


async def _insert(store: Store, title: str) -> None:
    """Commit one incident row the way Warden's writes do (SQLite's writer thread)."""
    row = _row(store, title)

    def write(conn: Connection, _: None) -> None:
        conn.execute(incidents.insert().values(**row))

    await store.run_write(write, None)


async def test_reading_sees_one_state_across_its_statements(store: Store) -> None:
    """Writes committed while a read is under way (by the writer and through the pool) are
    not seen by its later statements; the next read sees them all."""
    await _insert(store, "Before the read")
    async with store.reading() as conn:
        assert (await conn.execute(COUNT)).scalar() == 1
        await _insert(store, "Committed by the writer during the read")
        async with store.writing() as other:
            await other.execute(incidents.insert().values(**_row(store, "Through the pool")))
        assert (await conn.execute(COUNT)).scalar() == 1
        keys = (await conn.execute(select(incidents.c.key))).scalars().all()
        assert len(keys) == 1
    async with store.reading() as conn:
        assert (await conn.execute(COUNT)).scalar() == 3


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_reading_refuses_writes_on_postgresql(store: Store) -> None:
    """A write slipped into a read fails (a read-only transaction) and leaves nothing."""
    with pytest.raises(DBAPIError, match="read-only transaction"):
        async with store.reading() as conn:
            await conn.execute(incidents.insert().values(**_row(store, "Not a read")))
    async with store.reading() as conn:
        assert (await conn.execute(COUNT)).scalar() == 0
