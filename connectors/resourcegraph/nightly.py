"""The nightly CMDB sync: due once a night at a UTC time, resumed when left half-way.

Every replica ticks (``core.leader.run_as_leader``, so one at a time); a tick runs when a run
is due (``is_due``): none has finished since the latest scheduled time (the first ever and a
missed night included), or the checkpointed run is unfinished (a replica died or it failed).
An unfinished run is resumed from its checkpoint; after a failure it waits ``retry_seconds``
first, so a refused query is not sent again every tick. Each tick publishes the outcome as
metrics: the last finished run, the CIs stored, those needing tags, and failures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta

from connectors.resourcegraph.cmdb_sync import CmdbRun, CmdbSync
from core.errors import WardenError
from core.metrics import Metrics
from core.schedule import last_slot
from core.store import cmdb_cis
from core.store.store import Store

log = logging.getLogger(__name__)

OpenSync = Callable[[], Awaitable[tuple[CmdbSync, Callable[[], Awaitable[None]]]]]
"""Opens a sync for one run and gives what closes it (its HTTP clients, credential)."""


def is_due(run: CmdbRun | None, now: datetime, at: time, retry_seconds: float) -> bool:
    """True when a run should go now (see the module docstring)."""
    if run is None:
        return True
    if run.finished_at is None:
        failed = run.failed_at
        return failed is None or now >= failed + timedelta(seconds=retry_seconds)
    return run.finished_at < last_slot(now, at)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CmdbNightly:
    """One scheduler tick at a time (see the module docstring)."""

    def __init__(
        self,
        open_sync: OpenSync,
        store: Store,
        at: time,
        *,
        retry_seconds: float = 900.0,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """Run at ``at`` (UTC) through syncs ``open_sync`` opens, one per run."""
        self._open = open_sync
        self._store = store
        self._at = at
        self._retry = retry_seconds
        self._metrics = metrics
        self._clock = clock
        self._ticked = asyncio.Condition()
        self._ticks = 0

    async def wait_for_ticks(self, count: int) -> None:
        """Return once ``count`` ticks have ended (whatever they did)."""
        async with self._ticked:
            await self._ticked.wait_for(lambda: self._ticks >= count)

    async def round(self) -> None:
        """One tick for the leader loop: a failure to open or read is logged, never raised."""
        try:
            await self.tick()
        except WardenError as exc:
            log.warning("nightly CMDB sync check failed: %s", exc)
        finally:
            async with self._ticked:
                self._ticks += 1
                self._ticked.notify_all()

    async def tick(self) -> CmdbRun | None:
        """Run, or resume, when due; the finished run, else None (not due, or it stopped:
        that is logged and recorded, and a later tick resumes it)."""
        sync, close = await self._open()
        try:
            current = await sync.current()
            if not is_due(current, self._clock(), self._at, self._retry):
                await self._publish(current)
                return None
            resume = current is not None and current.finished_at is None
            try:
                run = await sync.run(resume=resume)
            except WardenError as exc:
                log.warning("nightly CMDB sync stopped, to resume later: %s", exc)
                if self._metrics is not None:
                    self._metrics.cmdb_runs.labels("failed").inc()
                await self._publish(await sync.current())
                return None
        finally:
            await close()
        if self._metrics is not None:
            self._metrics.cmdb_runs.labels("finished").inc()
        await self._publish(run)
        return run

    async def _publish(self, run: CmdbRun | None) -> None:
        """Set the CMDB gauges from the run and the store's counts."""
        if self._metrics is None:
            return
        counts = await cmdb_cis.counts(self._store)
        for state, count in counts.items():
            self._metrics.cmdb_cis.labels(state).set(count)
        if run is not None and run.finished_at is not None:
            self._metrics.cmdb_last_success.set(run.finished_at.timestamp())
