"""Leadership: on PostgreSQL one replica at a time runs a named job; SQLite always leads."""

from __future__ import annotations

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
            async with leadership(second, "reconcile") as takes_over:
                assert takes_over
    finally:
        await first.close()
        await second.close()


def test_lock_key_stable_and_distinct() -> None:
    """Lock keys are stable per name and differ between names."""
    assert lock_key("poller") == lock_key("poller")
    assert lock_key("poller") != lock_key("reconcile")
