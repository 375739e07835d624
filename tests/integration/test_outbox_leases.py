"""Outbox leases: a job runs on one worker at a time, even when a worker stalls past its lease.

A worker renews the leases of the jobs it runs; one that lost a lease anyway (another worker
claimed the job after it ran out) writes no outcome for it, and a handler's ``outbox.hold``
stops it before it does the work a second time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from core.crypto import PayloadCipher
from core.settings.outbox import OutboxSettings
from core.store import outbox
from core.store.outbox import Job, LeaseLost
from core.store.schema import outbox as outbox_table
from core.store.store import Store
from core.worker import OutboxWorker
from tests.support import ENCRYPTION_KEY


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A migrated store with one due job of kind ``slow``."""
    store = Store.from_url(database_url, cipher=PayloadCipher([ENCRYPTION_KEY]))
    await store.upgrade()
    row = outbox.job_row("slow", "card:1", {"n": 1}, cipher=store.cipher)
    async with store.writing() as conn:
        await conn.execute(outbox_table.insert(), [row])
    try:
        yield store
    finally:
        await store.close()


async def _past(moment: float) -> None:
    """Return once the wall clock is past ``moment`` (leases run on it: nothing to await)."""
    await asyncio.sleep(max(0.0, moment - time.time()) + 0.01)


async def _claim_after_expiry(store: Store, first: Job) -> Job:
    """Claim ``first`` again as a second worker would once its lease has run out."""
    assert first.lease is not None
    await _past(first.lease.until)
    (second,) = await outbox.claim(store, 10, 30)
    return second


async def test_outbox_lease_taken_over_first_worker_writes_nothing(store: Store) -> None:
    """After another worker claimed an expired job, the first one's outcome, renewal and hold
    all fail; the job stays running under the second worker's lease."""
    (first,) = await outbox.claim(store, 10, 0.2)
    second = await _claim_after_expiry(store, first)
    assert second.id == first.id
    assert await outbox.finish(store, first.id, lease=first.lease) is False
    assert await outbox.reschedule(store, first.id, 1, 0, "x", lease=first.lease) is False
    assert await outbox.extend(store, [first], 30) == [first]
    with pytest.raises(LeaseLost):
        await store.run_write(outbox.hold, first)
    assert (await outbox.counts(store)).get(outbox.RUNNING) == 1
    await store.run_write(outbox.hold, second)
    assert await outbox.finish(store, second.id, lease=second.lease) is True
    assert (await outbox.counts(store)).get(outbox.DONE) == 1


async def test_outbox_lease_renewed_job_not_claimed_while_running(store: Store) -> None:
    """A renewed lease keeps the job from other workers past its first expiry, and its
    outcome is still written under the renewed lease."""
    (job,) = await outbox.claim(store, 10, 0.5)
    assert job.lease is not None
    claimed_until = job.lease.until
    assert await outbox.extend(store, [job], 30) == []
    assert job.lease.until > claimed_until
    await _past(claimed_until)
    assert await outbox.claim(store, 10, 30) == []
    assert await outbox.finish(store, job.id, lease=job.lease) is True


async def test_worker_job_longer_than_its_lease_runs_once(store: Store) -> None:
    """Two workers share the outbox; a job that takes four times its lease runs on one of
    them only, because the worker running it keeps renewing the lease."""
    runs: list[int] = []
    finished = asyncio.Event()
    settings = OutboxSettings(lease_seconds=0.3, poll_seconds=0.05)

    async def slow(job: Job) -> None:
        runs.append(job.id)
        await asyncio.sleep(1.2)  # the work itself takes long: four leases
        await store.run_write(outbox.hold, job)
        finished.set()

    workers = [OutboxWorker(store, {"slow": slow}, settings) for _ in range(2)]
    for worker in workers:
        await worker.start()
    try:
        async with asyncio.timeout(10):
            await finished.wait()
            await workers[0].wait_until(lambda: _done(store), within=5)
    finally:
        for worker in workers:
            await worker.stop()
    assert runs == [runs[0]], f"the job ran {len(runs)} times"


async def _done(store: Store) -> bool:
    return (await outbox.counts(store)).get(outbox.DONE) == 1


async def test_outbox_claim_skips_jobs_the_worker_still_runs(store: Store) -> None:
    """A job whose lease ran out while its worker still runs it is not claimed again by that
    worker (a busy host renews late); another worker may claim it."""
    (job,) = await outbox.claim(store, 10, 0.2)
    assert job.lease is not None
    await _past(job.lease.until)
    assert await outbox.claim(store, 10, 30, running=[job.id]) == []
    (again,) = await outbox.claim(store, 10, 30)
    assert again.id == job.id
