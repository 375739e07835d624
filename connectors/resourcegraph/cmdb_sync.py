"""The CMDB sync: every Azure resource Resource Graph returns, stored as a CMDB CI, resumably.

A run pages the configured query (``WARDEN_CMDB__QUERY``) along ``$skipToken``. For each
page it maps the rows to CIs (``mapping``), upserts them into ServiceNow when a sink is given
(``connectors.servicenow.cmdb.CmdbUpsert``, exact by resource id), then stores them and moves
the checkpoint (a JSON ``CmdbRun``) in one transaction. A run stopped half-way (an error, a
SIGKILL) resumes (``resume=True``) from the last stored page; the pages it redoes are upserts,
so no CI is ever written twice. When the last page is stored, the CIs no run has seen for
``retire_after_runs`` runs are marked retired, in ServiceNow first and then in the store.
A resumed ``$skipToken`` the service no longer accepts restarts the run from its first page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from pydantic import BaseModel, Field, ValidationError

from connectors.resourcegraph.client import ResourceGraphClient, ResourcePage
from connectors.resourcegraph.errors import ResourceGraphQueryError
from connectors.resourcegraph.mapping import ci_from_row
from core.errors import InvalidPayload, WardenError
from core.itsm import ConfigurationItem
from core.settings.cmdb import CmdbSettings
from core.store import checkpoints
from core.store import cmdb_cis as cmdb_store
from core.store.store import Store

log = logging.getLogger(__name__)

LEADER_NAME = "cmdb-sync"
"""The leadership name: one replica (or command) syncs at a time."""


class CmdbSyncBusy(WardenError):
    """Another replica or command is syncing now; this one does not start a second run."""


class CmdbRun(BaseModel):
    """Where one sync run stands; the checkpoint after every stored page."""

    run: int = Field(ge=1, description="The run's number; the next run's is one more.")
    started_at: datetime = Field(description="When the run (first) began (UTC).")
    skip_token: str | None = Field(default=None, description="Where to resume; None: page 1.")
    pages: int = Field(default=0, description="Pages stored so far.")
    read: int = Field(default=0, description="Resources stored so far.")
    total: int | None = Field(default=None, description="Resources the query matches.")
    skipped: int = Field(default=0, description="Rows that were not resources (no id, name).")
    resumed: bool = Field(default=False, description="True once the run was resumed.")
    retired: int = Field(default=0, description="CIs this run marked retired.")
    finished_at: datetime | None = Field(default=None, description="When it finished.")
    owners_unresolved: int = Field(
        default=0, description="Owners ServiceNow has no one user for (owned_by left empty)."
    )
    error: str | None = Field(default=None, description="Why the run last stopped, if it did.")
    failed_at: datetime | None = Field(default=None, description="When it last stopped so.")


Progress = Callable[[CmdbRun], None]
"""Told the run when it starts or resumes and after every stored page."""


class CiSink(Protocol):
    """Where CIs are written besides the store (ServiceNow's ``cmdb_ci``)."""

    async def upsert(self, items: Sequence[ConfigurationItem]) -> int:
        """Create or update one record per CI; how many were written."""
        ...

    async def retire(self, ci_ids: Sequence[str]) -> int:
        """Mark the records of ``ci_ids`` retired; how many were written."""
        ...

    def owners_unresolved(self) -> int:
        """Distinct owners written so far that matched no one user (left empty)."""
        ...


async def read_ahead(pages: AsyncIterator[ResourcePage]) -> AsyncIterator[ResourcePage]:
    """``pages`` with the next one fetched while the caller works on the current one.

    One page at most waits in memory; when the caller stops (an error, a cancel) the
    fetch under way is cancelled and its page dropped: nothing past the checkpoint counts.
    """
    iterator = aiter(pages)
    ahead = asyncio.ensure_future(anext(iterator))
    try:
        while True:
            try:
                page = await ahead
            except StopAsyncIteration:
                return
            ahead = asyncio.ensure_future(anext(iterator))
            yield page
    finally:
        ahead.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await ahead


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CmdbSync:
    """Sync runs from Resource Graph into the store (and a sink), resumable."""

    def __init__(
        self,
        client: ResourceGraphClient,
        store: Store,
        settings: CmdbSettings,
        *,
        sink: CiSink | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """Sync as ``settings`` say; ``sink`` also receives every CI when given."""
        self._client = client
        self._store = store
        self._settings = settings
        self._sink = sink
        self._clock = clock
        self._latest = CmdbRun(run=1, started_at=clock())

    async def current(self) -> CmdbRun | None:
        """The checkpointed run, finished or not; None before the first (or if unreadable)."""
        text = await checkpoints.load(self._store, cmdb_store.CHECKPOINT)
        if text is None:
            return None
        try:
            return CmdbRun.model_validate_json(text)
        except ValidationError:
            log.warning("the CMDB sync checkpoint is unreadable; the next run starts afresh")
            return None

    async def run(self, *, resume: bool = False, progress: Progress | None = None) -> CmdbRun:
        """One run: resume the stopped one (``resume``), else a new one; the finished run.

        A ``WardenError`` that stops it is recorded on the checkpoint (``error``) and raised.
        """
        run = self._begin(await self.current(), resume)
        await checkpoints.save(self._store, cmdb_store.CHECKPOINT, run.model_dump_json())
        self._latest = run
        if progress is not None:
            progress(run)
        try:
            return await self._run(run, progress)
        except WardenError as exc:
            await self._record_failure(exc)
            raise

    async def _run(self, run: CmdbRun, progress: Progress | None) -> CmdbRun:
        """Walk every page (from page 1 again if a resumed token is refused), then finish."""
        try:
            run = await self._walk(run, progress)
        except ResourceGraphQueryError:
            if run.skip_token is None or run.pages == 0 or not run.resumed:
                raise
            log.warning("CMDB sync %d: the resumed $skipToken was refused; from page 1", run.run)
            run = run.model_copy(update={"skip_token": None})
            run = await self._walk(run, progress)
        return await self._finish(run)

    async def _record_failure(self, exc: WardenError) -> None:
        """Save the last stored page's run with why it stopped (best effort)."""
        failed = self._latest.model_copy(
            update={"error": f"{type(exc).__name__}: {exc}"[:300], "failed_at": self._clock()}
        )
        try:
            await checkpoints.save(self._store, cmdb_store.CHECKPOINT, failed.model_dump_json())
        except WardenError:
            log.warning("CMDB sync %d: could not record why it stopped", failed.run)

    def _begin(self, previous: CmdbRun | None, resume: bool) -> CmdbRun:
        """The run to do: the stopped one when resuming, else a new one (same number if
        the previous one never finished: it is done again, from page 1)."""
        now = self._clock()
        if previous is not None and previous.finished_at is None:
            if resume:
                log.info("CMDB sync %d resumes after %d page(s)", previous.run, previous.pages)
                return previous.model_copy(update={"resumed": True, "error": None})
            return CmdbRun(run=previous.run, started_at=now)
        number = previous.run + 1 if previous is not None else 1
        return CmdbRun(run=number, started_at=now)

    async def _walk(self, run: CmdbRun, progress: Progress | None) -> CmdbRun:
        """Store every page from the run's skip token on; the run after the last page."""
        settings = self._settings
        pages = self._client.pages(
            settings.query,
            subscriptions=settings.subscriptions,
            top=settings.page_size,
            skip_token=run.skip_token,
        )
        async for page in read_ahead(pages):
            run = await self._store_page(run, page)
            if progress is not None:
                progress(run)
        return run

    async def _store_page(self, run: CmdbRun, page: ResourcePage) -> CmdbRun:
        """Write one page (sink first, then store and checkpoint together); the new run."""
        seen_at = self._clock()
        items: list[ConfigurationItem] = []
        for row in page.rows:
            try:
                items.append(
                    ci_from_row(
                        row,
                        owner_tags=self._settings.owner_tags,
                        env_tags=self._settings.env_tags,
                        seen_at=seen_at,
                    )
                )
            except InvalidPayload as exc:
                log.warning("CMDB sync: skipped a row without a resource (field %s)", exc.field)
        if self._sink is not None and items:
            await self._sink.upsert(items)
        after = run.model_copy(
            update={
                "skip_token": page.skip_token,
                "pages": run.pages + 1,
                "read": run.read + len(items),
                "skipped": run.skipped + len(page.rows) - len(items),
                "total": page.total if run.total is None else run.total,
            }
        )
        await cmdb_store.store_page(self._store, items, run.run, after.model_dump_json())
        self._latest = after
        return after

    async def _finish(self, run: CmdbRun) -> CmdbRun:
        """Retire what runs stopped seeing (the sink first) and record the run finished."""
        after = self._settings.retire_after_runs
        stale = await cmdb_store.stale_ids(self._store, run.run, after)
        if self._sink is not None and stale:
            await self._sink.retire(stale)
        unresolved = self._sink.owners_unresolved() if self._sink is not None else 0
        done = run.model_copy(
            update={
                "finished_at": self._clock(),
                "retired": run.retired + len(stale),
                "owners_unresolved": unresolved,
            }
        )
        retired = await cmdb_store.finish_run(self._store, run.run, after, done.model_dump_json())
        log.info(
            "CMDB sync %d finished: %d resource(s) in %d page(s), %d retired",
            done.run,
            done.read,
            done.pages,
            len(retired),
        )
        return done
