"""A rolling upgrade: replicas of the previous release keep serving after `db upgrade` ran."""

from __future__ import annotations

from sqlalchemy import text

from core.crypto import PayloadCipher, generate_key
from core.store import migrate
from core.store.store import Store
from tests.integration.conftest import WardenFactory

NEWER = "9001_a_newer_release"


async def _migrated_by_a_newer_release(database_url: str) -> None:
    store = Store.from_url(database_url, cipher=PayloadCipher([generate_key()]))
    try:
        await store.upgrade()
        async with store.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": NEWER})
    finally:
        await store.close()


async def test_database_ahead_of_this_release_is_current_and_not_downgraded(
    database_url: str, start_warden: WardenFactory
) -> None:
    """A schema a newer release expanded is ready for this one: start-up migrates nothing
    (alembic would refuse an unknown revision) and /readyz says ready, naming it ahead."""
    await _migrated_by_a_newer_release(database_url)
    assert migrate.is_ahead(NEWER)
    assert not migrate.is_ahead(migrate.head_revision())

    warden = await start_warden()  # auto-migrate is on: it must leave the newer revision be
    ready = await (await warden.client.get("/readyz")).json()
    assert ready["status"] == "ready"
    assert ready["checks"]["store"]["revision"] == NEWER
    assert ready["checks"]["store"]["ahead"] is True


async def test_database_behind_is_not_current(database_url: str) -> None:
    """An empty database is behind: not current, not ahead (run `db upgrade`)."""
    store = Store.from_url(database_url, cipher=PayloadCipher([generate_key()]))
    try:
        facts = await store.check()
    finally:
        await store.close()
    assert facts["current"] is False
    assert facts["ahead"] is False
