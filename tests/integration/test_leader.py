"""Leadership: on PostgreSQL one replica at a time runs a named job; SQLite always leads."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text

from core.leader import leadership, lock_key
from core.store.store import Store


async def test_leadership_two_replicas_one_leads(database_url: str) -> None:
    """Of two stores on one database, only one leads; after it lets go, the other can."""
    first, second = Store.from_url(database_url), Store.from_url(database_url)
    try:
        async with leadership(first, "poller") as first_leads:
            assert first_leads
            async with leadership(second, "poller") as second_leads:
                assert second_leads is (first.dialect != "postgresql")
            async with leadership(second, "other-job") as other:
                assert other
        async with leadership(second, "poller") as second_leads:
            assert second_leads
    finally:
        await first.close()
        await second.close()


async def test_leadership_leader_connection_dies_other_takes_over(database_url: str) -> None:
    """When the leader's session dies with its replica, another replica can lead."""
    first, second = Store.from_url(database_url), Store.from_url(database_url)
    try:
        async with leadership(first, "reconcile") as leads:
            assert leads
            if second.dialect == "postgresql":
                async with leadership(second, "reconcile") as blocked:
                    assert not blocked
                async with second.engine.connect() as admin:
                    await admin.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                    )
            assert await _leads_within(second, "reconcile", seconds=10)
    finally:
        await first.close()
        await second.close()


async def _leads_within(store: Store, name: str, *, seconds: float) -> bool:
    """Whether ``store`` gets to lead ``name`` within ``seconds`` (a terminated backend lets
    go of its session locks only once PostgreSQL has ended it, a moment after it was told)."""
    deadline = time.monotonic() + seconds
    while True:
        async with leadership(store, name) as leads:
            if leads or time.monotonic() > deadline:
                return leads
        await asyncio.sleep(0.05)


def test_lock_key_stable_and_distinct() -> None:
    """Lock keys are stable per name and differ between names."""
    assert lock_key("poller") == lock_key("poller")
    assert lock_key("poller") != lock_key("reconcile")
