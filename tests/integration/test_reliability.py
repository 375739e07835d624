"""Nothing lost, nothing doubled: quarantine, dead letters, replay, breakers, backpressure."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.store import dlq, outbox
from core.store.store import Store
from sandbox.connector import Fault
from tests.integration.conftest import Warden, WardenFactory, incident


async def _store(warden: Warden) -> Store:
    from app import STORE

    return warden.client.app[STORE]


async def _dlq(warden: Warden) -> list[outbox.JobRow]:
    return await outbox.list_jobs(await _store(warden), outbox.DLQ)


async def test_delivery_400_quarantined_at_once_replay_delivers_once(warden: Warden) -> None:
    """A 400 is not retried: the job is quarantined with the reason; a replay delivers once."""
    conversation = await warden.subscribed_channel()
    warden.connector.add_fault(
        Fault(status=400, times=1, method="POST", path="/activities", code="BadArgument")
    )
    await warden.webhook(incident(title="Malformed once"))
    dead = await _wait_dlq(warden, 1)
    assert dead[0].status == outbox.QUARANTINED
    assert dead[0].attempts == 1
    assert "BadArgument" in (dead[0].last_error or "")
    store = await _store(warden)
    assert await dlq.replay(store, dead[0].id, actor="os:test@host")
    assert not await dlq.replay(store, dead[0].id, actor="os:test@host"), "left the DLQ"
    posts = await warden.connector.wait_for(lambda s: warden.card_posts(conversation))
    assert len(posts) == 1
    assert await _dlq(warden) == []


async def _wait_dlq(warden: Warden, count: int) -> list[outbox.JobRow]:
    """The DLQ once it holds ``count`` jobs, awaited on the worker's saved outcomes."""
    from app import WORKER

    async def filled() -> bool:
        return len(await _dlq(warden)) >= count

    await warden.client.app[WORKER].wait_until(filled)
    return await _dlq(warden)


async def test_delivery_attempts_spent_job_dead(start_warden: WardenFactory) -> None:
    """With the connector down, a job dies after its attempts, with the last reason."""
    from core.settings.outbox import OutboxSettings

    warden = await start_warden(
        outbox=OutboxSettings(
            max_attempts=3, backoff_base_seconds=0.01, backoff_max_seconds=0.02, poll_seconds=0.1
        )
    )
    conversation = await warden.subscribed_channel()
    warden.connector.set_down(True)
    await warden.webhook(incident())
    dead = await _wait_dlq(warden, 1)
    assert dead[0].status == outbox.DEAD
    assert dead[0].attempts == 3
    assert "gave up after 3" in (dead[0].last_error or "")
    assert len([r for r in warden.connector.posts(conversation) if r.status == 503]) == 3


async def test_breaker_connector_failing_opens_and_shows_in_readyz(
    start_warden: WardenFactory,
) -> None:
    """Repeated 5xx from one host open its breaker; /readyz names the host and state."""
    from core.settings.outbox import OutboxSettings

    warden = await start_warden(
        outbox=OutboxSettings(
            max_attempts=50, backoff_base_seconds=0.01, backoff_max_seconds=0.02, poll_seconds=0.1
        )
    )
    conversation = await warden.subscribed_channel()
    warden.connector.add_fault(Fault(status=502, times=None, method="POST"))
    await warden.webhook(incident())
    # the welcome and the answer to "subscribe" succeeded: 8 failures make 10 calls, 80 %
    await warden.connector.wait_for(
        lambda s: len([r for r in s.posts(conversation) if r.status == 502]) >= 8
    )
    ready = await (await warden.client.get("/readyz")).json()
    hosts = ready["checks"]["breakers"]["hosts"]
    assert hosts[warden.connector.url.rstrip("/")]["state"] == "open"
    failed = [r for r in warden.connector.posts(conversation) if r.status == 502]
    assert len(failed) == 8, "an open breaker stops the calls"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_ingest_store_locked_503_retry_after_then_accepted(
    start_warden: WardenFactory, database_url: str
) -> None:
    """While the store cannot commit, ingest answers 503 with Retry-After; then 202."""
    warden = await start_warden(store_timeout_seconds=0.2)
    path = Path(database_url.split("///", 1)[1])
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        resource = incident()
        refused = await warden.webhook(resource, msg_id="msg_backpressure")
        assert refused.status == 503
        assert refused.headers["Retry-After"] == "5"
        assert (await refused.json())["status"] == 503
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    accepted = await warden.webhook(resource, msg_id="msg_backpressure")
    assert accepted.status == 202


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_pacing_burst_of_100_cards_never_throttled(
    start_warden: WardenFactory, database_url: str
) -> None:
    """A burst of 100 cards to one channel is paced under Teams' limits: no 429 at all."""
    warden = await start_warden()
    conversation = await warden.subscribed_channel()
    warden.connector.rate_limit = True
    for number in range(100):
        response = await warden.webhook(incident(title=f"burst {number}"))
        assert response.status == 202
    posts = await warden.connector.wait_for(
        lambda s: len(warden.card_posts(conversation)) >= 100 or None, timeout=60
    )
    del posts
    throttled = [r for r in warden.connector.posts(conversation) if r.status == 429]
    assert throttled == []
    assert len(warden.card_posts(conversation)) == 100


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_pacing_holds_when_posts_reach_teams_late(
    start_warden: WardenFactory, database_url: str
) -> None:
    """Posts that reach Teams 0.6 s late still draw no 429: the limits count from the answer."""
    warden = await start_warden()
    conversation = await warden.subscribed_channel()
    warden.connector.rate_limit = True
    warden.connector.add_fault(Fault(delay=0.6, times=7, method="POST", path="/activities"))
    for number in range(20):
        response = await warden.webhook(incident(title=f"late {number}"))
        assert response.status == 202
    await warden.connector.wait_for(
        lambda s: len(warden.card_posts(conversation)) >= 20 or None, timeout=30
    )
    assert [r.status for r in warden.connector.posts(conversation) if r.status == 429] == []
    assert len(warden.card_posts(conversation)) == 20


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_second_replica_refused_naming_postgresql(
    start_warden: WardenFactory,
) -> None:
    """A second Warden on the same SQLite file refuses to start and says to use PostgreSQL."""
    from core.errors import SettingsError

    await start_warden()
    with pytest.raises(SettingsError, match="PostgreSQL"):
        await start_warden()


async def test_status_connector_failing_says_delivery_paused(start_warden: WardenFactory) -> None:
    """Once the connector's breaker is open, `status` tells the channel delivery is paused."""
    from core.settings.outbox import OutboxSettings

    warden = await start_warden(
        outbox=OutboxSettings(
            max_attempts=50, backoff_base_seconds=0.01, backoff_max_seconds=0.02, poll_seconds=0.1
        )
    )
    conversation = await warden.subscribed_channel()
    before = await warden.say(conversation, "status")
    assert "'Delivery', 'value': 'ok'" in str(before)
    warden.connector.add_fault(Fault(status=502, times=None, method="POST", path="/activities"))
    await warden.webhook(incident())
    await warden.connector.wait_for(
        lambda s: len([r for r in s.posts(conversation) if r.status == 502]) >= 7
    )
    warden.connector.clear_faults()
    after = await warden.say(conversation, "status")
    assert "paused: Teams keeps failing" in str(after)


async def test_prune_old_done_jobs_and_receipts_removed_recent_kept(warden: Warden) -> None:
    """Pruning drops finished jobs and receipts older than the retention, keeps the rest."""
    import time

    conversation = await warden.subscribed_channel()
    await warden.webhook(incident(), msg_id="msg_old")
    await warden.delivered(1)
    store = await _store(warden)
    assert await outbox.prune(store, time.time() - 3600) == 0
    removed = await outbox.prune(store, time.time() + 1)
    # one done job, the webhook's receipt and the receipts of the two activities (install,
    # subscribe) that Warden acted on once
    assert removed == 4
    assert await warden.jobs() == 0
    assert conversation
