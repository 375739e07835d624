"""The outbox worker: claims due jobs and runs each through the handler for its kind.

The outbox is the single retry authority: a handler raises ``DeliveryError`` and the worker
decides from its ``outcome`` — try again later (jittered exponential backoff, never sooner
than the service's ``Retry-After``), quarantine the job at once when retrying cannot help, or
mark it dead once its attempts are spent. Jobs of paced kinds first take a slot from the
``Pacer`` of their conversation, and wait without losing an attempt when none is free. Any
other exception is logged with a correlation id and retried the same way, so a bug never
silently drops accepted work. While a job runs its lease is renewed every third of the lease;
a worker that lost a lease anyway (it stalled, another replica claimed the job) writes no
outcome for that job and stops at the handler's next ``outbox.hold``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable

from core.errors import DeliveryError, Outcome, StoreUnavailable
from core.logs import new_correlation_id
from core.metrics import Metrics
from core.pacing import Pacer, Slot
from core.settings.outbox import OutboxSettings
from core.store import outbox
from core.store.outbox import Job, LeaseLost
from core.store.store import Store
from core.tracing import span

log = logging.getLogger(__name__)

Handler = Callable[[Job], Awaitable[None]]
PRUNE_SECONDS = 600.0


def backoff_delay(attempt: int, settings: OutboxSettings, retry_after: float | None) -> float:
    """Delay before attempt ``attempt + 1``: exponential with equal jitter, capped.

    Never shorter than ``retry_after`` when the service asked for a pause.
    """
    ceiling = min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** (attempt - 1))
    delay: float = ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


class OutboxWorker:
    """Runs outbox jobs with bounded concurrency until stopped."""

    def __init__(
        self,
        store: Store,
        handlers: dict[str, Handler],
        settings: OutboxSettings,
        *,
        pacer: Pacer | None = None,
        paced_kinds: frozenset[str] = frozenset(),
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._store = store
        self._handlers = handlers
        self._settings = settings
        self._pacer = pacer
        self._paced_kinds = paced_kinds
        self._wake = asyncio.Event()
        self._settled = asyncio.Condition()
        self._pruned_at = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: dict[int, Job] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        """True while the claim loop is alive."""
        return self._loop_task is not None and not self._loop_task.done()

    def wake(self) -> None:
        """Look for due jobs now (called after a commit that enqueued work)."""
        self._wake.set()

    async def start(self) -> None:
        """Start claiming jobs."""
        self._stopping = False
        self._loop_task = asyncio.create_task(self._run(), name="outbox-worker")
        self._lease_task = asyncio.create_task(self._keep_leases(), name="outbox-leases")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; let running jobs finish for ``grace`` seconds, then cancel them.

        A cancelled job keeps its lease and is claimed again once the lease runs out.
        """
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._lease_task is not None:
            self._lease_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lease_task

    async def _keep_leases(self) -> None:
        """Renew the running jobs' leases every third of the lease, so a job that takes long
        (a large file, a slow service) is not claimed by another replica meanwhile."""
        while True:
            await asyncio.sleep(self._settings.lease_seconds / 3)
            jobs = list(self._running.values())
            if not jobs:
                continue
            try:
                lost = await outbox.extend(self._store, jobs, self._settings.lease_seconds)
            except StoreUnavailable as exc:
                log.warning("outbox leases not renewed: %s", exc)
                continue
            except Exception:  # the renewals must go on whatever one round met
                log.exception("outbox leases not renewed (unexpected error)")
                continue
            for job in lost:
                log.warning("outbox job %s: its lease was lost to another worker", job.id)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            free = self._settings.concurrency - len(self._tasks)
            timeout = self._settings.poll_seconds
            if free > 0:
                try:
                    jobs = await outbox.claim(
                        self._store, free, self._settings.lease_seconds, running=self._running
                    )
                except StoreUnavailable as exc:
                    log.warning("outbox claim failed: %s", exc)
                    jobs = []
                for job in jobs:
                    self._spawn(job)
                if not jobs:
                    await self._prune_now_and_then()
                    timeout = await self._idle_timeout()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _prune_now_and_then(self) -> None:
        """Drop old finished jobs and receipts, at most every ``PRUNE_SECONDS``, when idle."""
        now = time.time()
        if now - self._pruned_at < PRUNE_SECONDS:
            return
        self._pruned_at = now
        try:
            removed = await outbox.prune(self._store, now - self._settings.retain_hours * 3600)
        except StoreUnavailable as exc:
            log.warning("outbox prune skipped: %s", exc)
            return
        if removed:
            log.info("pruned %s finished jobs and receipts", removed)

    async def _idle_timeout(self) -> float:
        try:
            due = await outbox.next_due(self._store)
        except StoreUnavailable:
            return self._settings.poll_seconds
        if due is None:
            return self._settings.poll_seconds
        return max(0.0, min(self._settings.poll_seconds, due - time.time()))

    def _spawn(self, job: Job) -> None:
        task = asyncio.create_task(self._execute(job), name=f"outbox-job-{job.id}")
        self._tasks.add(task)
        self._running[job.id] = job
        task.add_done_callback(lambda done: self._finished(done, job.id))

    def _finished(self, task: asyncio.Task[None], job_id: int) -> None:
        self._tasks.discard(task)
        self._running.pop(job_id, None)
        self._wake.set()

    async def _execute(self, job: Job) -> None:
        new_correlation_id()  # every line of this job, and its outbound calls, share it
        handler = self._handlers.get(job.kind)
        attempts = job.attempts + 1
        wait, slot = self._pace(job)
        if wait > 0:
            self._count(job, "deferred")
            await self._record(job, outbox.defer(self._store, job.id, wait, lease=job.lease))
            return
        trace = job.payload.get("trace")
        try:
            if handler is None:
                raise DeliveryError(f"no handler for job kind {job.kind!r}", outcome=Outcome.FAIL)
            with span(f"outbox {job.kind}", parent=trace if isinstance(trace, dict) else None):
                try:
                    await handler(job)
                finally:
                    if slot is not None and self._pacer is not None:
                        self._pacer.settle(slot)  # it reached Teams by now at the latest
        except LeaseLost as exc:
            self._count(job, "lost")
            log.warning("outbox job %s stopped: %s", job.id, exc)
        except DeliveryError as exc:
            await self._failed(job, attempts, exc)
        except StoreUnavailable as exc:
            await self._failed(job, attempts, DeliveryError(str(exc), outcome=Outcome.RETRY))
        except Exception as exc:
            ref = uuid.uuid4().hex[:12]
            log.exception("outbox job %s failed unexpectedly (ref %s)", job.id, ref)
            error = DeliveryError(f"{type(exc).__name__} (ref {ref})", outcome=Outcome.RETRY)
            await self._failed(job, attempts, error)
        else:
            self._count(job, "done")
            await self._record(job, outbox.finish(self._store, job.id, lease=job.lease))

    def _count(self, job: Job, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.jobs.labels(job.kind, outcome).inc()

    def _pace(self, job: Job) -> tuple[float, Slot | None]:
        if self._pacer is None or job.kind not in self._paced_kinds or not job.conversation_id:
            return 0.0, None
        return self._pacer.take(job.conversation_id)

    async def _failed(self, job: Job, attempts: int, exc: DeliveryError) -> None:
        reason = f"{exc.outcome.value}: {exc}"
        if not exc.attempted:
            self._count(job, "deferred")
            delay = exc.retry_after or self._settings.poll_seconds
            await self._record(
                job, outbox.defer(self._store, job.id, delay, reason=reason, lease=job.lease)
            )
            return
        if exc.retry_after and self._pacer is not None and job.conversation_id:
            self._pacer.pause(job.conversation_id, exc.retry_after)
        if exc.outcome in (Outcome.FAIL, Outcome.GONE):
            self._count(job, "quarantined")
            log.warning("outbox job %s quarantined: %s", job.id, reason)
            await self._record(
                job, outbox.quarantine(self._store, job.id, attempts, reason, lease=job.lease)
            )
        elif attempts >= self._settings.max_attempts:
            self._count(job, "dead")
            log.warning("outbox job %s dead after %s attempts: %s", job.id, attempts, reason)
            reason = f"gave up after {attempts}: {reason}"
            await self._record(
                job, outbox.bury(self._store, job.id, attempts, reason, lease=job.lease)
            )
        else:
            self._count(job, "retry")
            delay = backoff_delay(attempts, self._settings, exc.retry_after)
            log.info("outbox job %s retry in %.1fs: %s", job.id, delay, reason)
            await self._record(
                job,
                outbox.reschedule(self._store, job.id, attempts, delay, reason, lease=job.lease),
            )

    async def _record(self, job: Job, write: Awaitable[bool]) -> None:
        try:
            if not await write:
                log.warning("outbox job %s: outcome not saved, another worker holds it", job.id)
        except StoreUnavailable as exc:
            log.warning("outbox state not saved (the lease will expire and retry): %s", exc)
        async with self._settled:
            self._settled.notify_all()

    async def wait_until(self, check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
        """Return once ``check()`` is true, re-checked after each job's outcome is saved here,
        and at least every poll interval (another replica may have done the work)."""
        async with asyncio.timeout(within), self._settled:
            while not await check():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._settled.wait(), self._settings.poll_seconds)
