"""The nightly full reconcile: walk every open Sentinel incident, resumably, through ingest.

Polling reads what changed since its checkpoint; a change it never saw (a lost webhook, an
outage longer than the poll's first lookback, an incident opened before Warden was) would
stay unseen. Once a night the reconcile walks every open incident (New or Active) of every
configured workspace, page by page along ``nextLink`` in creation order, and stores each
page through the same ingest path as webhook and poll: a version already stored changes
nothing, so only changed incidents update their cards and no card is posted twice.

After each page is committed the checkpoint ``sentinel.reconcile`` moves (a JSON
``ReconcileRun``: the run, the workspace, the ``nextLink`` to resume from, counts). A run
stopped half-way (task cancelled, process killed) resumes from there; a finished run records
when it finished, and the next is due at the next scheduled time of day.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta

from pydantic import BaseModel, Field, ValidationError

from connectors.sentinel.client import SentinelClient, Workspace
from connectors.sentinel.errors import SentinelError
from core.errors import DeliveryError, Outcome, StoreUnavailable, WardenError
from core.ingest import IngestResult, IngestWriter
from core.metrics import Metrics
from core.models import IncidentStatus
from core.store import checkpoints
from core.store.store import Store

log = logging.getLogger(__name__)

CHECKPOINT = "sentinel.reconcile"
"""The checkpoint's name: one for every workspace, since a run walks them in turn."""

LEADER_NAME = "sentinel-reconcile"
"""The leadership name: one replica (or command) reconciles at a time."""

OPEN_STATUSES = (IncidentStatus.NEW, IncidentStatus.ACTIVE)
"""The statuses of an open incident."""


class ReconcileBusy(WardenError):
    """Another replica is reconciling now; this one does not start a second run."""


class ReconcileRun(BaseModel):
    """Where one reconcile run stands; saved as the checkpoint after every committed page."""

    run_id: str = Field(description="The run's id, the same across resumptions.")
    started_at: datetime = Field(description="When the run began (UTC).")
    workspaces: list[str] = Field(description="The workspaces it walks, in order.")
    workspace: int = Field(default=0, description="Index of the workspace being walked.")
    next_link: str | None = Field(default=None, description="Where to resume; None: from page 1.")
    pages: int = Field(default=0, description="Pages committed so far.")
    read: int = Field(default=0, description="Incident versions read so far.")
    changed: int = Field(default=0, description="Versions that were new to the store.")
    skipped: list[int] = Field(
        default_factory=list, description="Workspaces skipped after a failure retrying can't fix."
    )
    finished_at: datetime | None = Field(default=None, description="When it finished.")


Progress = Callable[[ReconcileRun], None]
"""Told the run when it starts or resumes and after every committed page."""


def last_slot(now: datetime, at: time) -> datetime:
    """The latest moment at or before ``now`` whose UTC time of day is ``at``."""
    slot = datetime.combine(now.astimezone(UTC).date(), at.replace(tzinfo=UTC))
    return slot if slot <= now else slot - timedelta(days=1)


def is_due(run: ReconcileRun | None, now: datetime, at: time) -> bool:
    """True when a run should go now: none has finished since the latest scheduled time.

    The first run ever is due at once (so is a night missed while Warden was down), and
    an unfinished run is always due: it resumes.
    """
    if run is None or run.finished_at is None:
        return True
    return run.finished_at < last_slot(now, at)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SentinelReconciler:
    """Full reconcile runs over the configured workspaces, resumable from the checkpoint."""

    def __init__(
        self,
        client: SentinelClient,
        workspaces: list[Workspace],
        writer: IngestWriter,
        store: Store,
        *,
        page_size: int = 200,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """Reconcile ``workspaces`` (at least one) in pages of ``page_size`` (1..1000)."""
        if not workspaces:
            raise ValueError("a reconcile needs at least one workspace")
        self._client = client
        self._workspaces = workspaces
        self._keys = [str(workspace).lower() for workspace in workspaces]
        self._writer = writer
        self._store = store
        self._page_size = page_size
        self._metrics = metrics
        self._clock = clock

    async def current(self) -> ReconcileRun | None:
        """The checkpointed run, finished or not; None before the first (or if unreadable)."""
        saved = await checkpoints.load(self._store, CHECKPOINT)
        if saved is None:
            return None
        try:
            return ReconcileRun.model_validate_json(saved)
        except ValidationError:
            log.warning("the sentinel reconcile checkpoint is unreadable; a new run starts")
            return None

    async def run_if_due(self, at: time) -> ReconcileRun | None:
        """One scheduler tick: run, or resume, when due (``is_due``); the finished run.

        None when nothing was due, or when Sentinel or the store failed: that is logged,
        the checkpoint stays at the last committed page and the next tick resumes there.
        """
        run = await self.current()
        if self._metrics is not None and run is not None and run.finished_at and not run.skipped:
            self._metrics.reconcile_last_success.set(run.finished_at.timestamp())
        if not is_due(run, self._clock(), at):
            return None
        try:
            return await self.run()
        except (DeliveryError, StoreUnavailable) as exc:
            log.warning("sentinel reconcile stopped, to resume at the next check: %s", exc)
            return None

    async def run(self, *, restart: bool = False, progress: Progress | None = None) -> ReconcileRun:
        """Walk every open incident of every workspace through ingest; the finished run.

        Resumes the checkpointed run if it is unfinished and over the same workspaces,
        unless ``restart``; otherwise starts a new one. Raises ``SentinelError`` or
        ``StoreUnavailable`` when a page cannot be read or stored (the checkpoint keeps
        the last committed page).
        """
        run = None if restart else await self.current()
        if run is None or run.finished_at is not None or run.workspaces != self._keys:
            run = ReconcileRun(
                run_id=uuid.uuid4().hex, started_at=self._clock(), workspaces=self._keys
            )
            log.info("sentinel reconcile %s starts over %s workspaces", run.run_id, len(self._keys))
        else:
            log.info("sentinel reconcile %s resumes after %s pages", run.run_id, run.pages)
        while run.finished_at is None:
            if progress is not None:
                progress(run)
            run = await self._step(run)
        if progress is not None:
            progress(run)
        log.info(
            "sentinel reconcile %s finished: %s pages, %s incidents read, %s changed, %s skipped",
            run.run_id,
            run.pages,
            run.read,
            run.changed,
            len(run.skipped),
        )
        return run

    async def _step(self, run: ReconcileRun) -> ReconcileRun:
        """Read one page, commit it through ingest, then move the checkpoint past it."""
        workspace = self._workspaces[run.workspace]
        try:
            page = await self._client.incident_page(
                workspace, statuses=OPEN_STATUSES, top=self._page_size, link=run.next_link
            )
        except SentinelError as exc:
            if exc.outcome in (Outcome.RETRY, Outcome.RATE_LIMITED):
                raise
            if run.next_link is not None:  # a saved link that expired: walk the workspace again
                log.warning("sentinel refused the saved nextLink (%s); starting over", exc.code)
                return run.model_copy(update={"next_link": None})
            log.error("sentinel reconcile skips workspace %s tonight: %s", run.workspace, exc)
            return await self._advance(run, None, [], skip=True)
        if page.next_link is not None and page.next_link == run.next_link:
            raise SentinelError("nextLink points to a loop", code="InvalidNextLink")
        results = await asyncio.gather(*(self._writer.submit(item) for item in page.incidents))
        return await self._advance(run, page.next_link, results)

    async def _advance(
        self,
        run: ReconcileRun,
        next_link: str | None,
        results: list[IngestResult],
        *,
        skip: bool = False,
    ) -> ReconcileRun:
        """Save the run past a committed page (or a skipped workspace) as the checkpoint."""
        changed = sum(1 for result in results if result.changed)
        done_here = next_link is None
        finished = done_here and run.workspace + 1 == len(self._workspaces)
        run = run.model_copy(
            update={
                "workspace": run.workspace + done_here,
                "next_link": next_link,
                "pages": run.pages + (not skip),
                "read": run.read + len(results),
                "changed": run.changed + changed,
                "skipped": [*run.skipped, run.workspace] if skip else run.skipped,
                "finished_at": self._clock() if finished else None,
            }
        )
        await checkpoints.save(self._store, CHECKPOINT, run.model_dump_json())
        self._measure(run, changed, len(results) - changed)
        return run

    def _measure(self, run: ReconcileRun, changed: int, unchanged: int) -> None:
        """Count a committed page in the metrics, if there are any."""
        if self._metrics is None:
            return
        self._metrics.reconcile_incidents.labels("changed").inc(changed)
        self._metrics.reconcile_incidents.labels("unchanged").inc(unchanged)
        self._metrics.reconcile_pages.set(run.pages)
        if run.finished_at is not None and not run.skipped:
            self._metrics.reconcile_last_success.set(run.finished_at.timestamp())
