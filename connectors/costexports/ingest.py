"""The cost exports ingest: every export run's partitions into cost per resource per day.

A run lists the manifests under the export path and keeps, for each export and period, the
newest run (Cost Management rewrites the whole period each time). Each partition of it is
streamed (CSV: ``ExportsClient.chunks`` → ``CostParser``; Parquet: ``ExportsClient.ranged``
→ ``ParquetCosts``, row group by row group), summed per resource and day, upserted in
batches, and checkpointed when its last batch is durable (``core.store.costs``).

A partition already done at the same ETag is not read again, so running the ingest twice
changes nothing. A run killed half-way leaves its partitions done so far checkpointed:
``resume=True`` keeps them and reads the others; without it a run not yet complete is read
again from its first partition. A partition rewritten since (another ETag) is read again.
A corrupt one is quarantined with the reason and the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from connectors.costexports.client import ExportsClient
from connectors.costexports.errors import CorruptPartition
from connectors.costexports.mapping import CostParser, CostSums, ExportBlob, Manifest
from core.costs import ExportRun
from core.errors import InvalidPayload, WardenError
from core.settings.costs import CostsSettings
from core.store import costs
from core.store.store import Store

log = logging.getLogger(__name__)

LEADER_NAME = "cost-exports"
"""The leadership name: one replica (or command) ingests at a time."""


class IngestBusy(WardenError):
    """Another replica or command is ingesting now."""


@dataclass
class IngestProgress:
    """Where an ingest stands; told to the progress callback after every partition."""

    manifests: int = 0
    partitions: int = 0
    done: int = 0
    """Partitions finished this run: ingested, quarantined or kept."""
    ingested: int = 0
    kept: int = 0
    """Partitions already done at the same ETag, not read again."""
    resumed: int = 0
    """Partitions kept from runs not completed yet (a stopped run resumed); known at start."""
    quarantined: int = 0
    rows: int = 0
    bad_manifests: list[str] = field(default_factory=list)


Progress = Callable[[IngestProgress], None]


@dataclass(frozen=True)
class _Plan:
    """One run to ingest: its partitions' ETags, those kept as stored, and if it completed."""

    manifest: Manifest
    etags: dict[str, str]
    keep: set[str]
    complete: bool


def newest_runs(manifests: list[Manifest]) -> list[Manifest]:
    """The newest run of each export and period (by submitted time, then run key)."""
    newest: dict[str, Manifest] = {}
    for manifest in manifests:
        current = newest.get(manifest.export_key)
        mine, theirs = (manifest.submitted_at, manifest.run_key), None
        if current is not None:
            theirs = (current.submitted_at, current.run_key)
        if theirs is None or mine > theirs:
            newest[manifest.export_key] = manifest
    return sorted(newest.values(), key=lambda m: m.run_key)


def export_run(manifest: Manifest) -> ExportRun:
    """The store's record of the run ``manifest`` describes."""
    return ExportRun(
        run_key=manifest.run_key,
        export_key=manifest.export_key,
        run_id=manifest.run_id,
        period_start=manifest.period_start,
        period_end=manifest.period_end,
        submitted_at=manifest.submitted_at,
        blobs=len(manifest.blobs),
    )


def _parquet_thread() -> ThreadPoolExecutor:
    """pyarrow's one thread (started on first use): its allocator keeps memory per thread,
    so one thread reads every Parquet partition of a run (a pool's threads would each keep
    their own)."""
    return ThreadPoolExecutor(1, thread_name_prefix="warden-parquet")


class CostIngest:
    """Ingest runs from an export container into the store."""

    def __init__(self, client: ExportsClient, store: Store, settings: CostsSettings) -> None:
        """Ingest what ``settings.export_path`` holds, ``settings.batch_size`` rows a batch."""
        self._client = client
        self._store = store
        self._settings = settings
        self._parquet_thread = _parquet_thread()

    async def run(
        self, *, resume: bool = False, progress: Progress | None = None
    ) -> IngestProgress:
        """One ingest of every export's newest run; what it did."""
        state = IngestProgress()
        self._parquet_thread = _parquet_thread()
        manifests: list[Manifest] = []
        for name in await self._client.manifest_names(self._settings.export_path):
            try:
                manifests.append(await self._client.manifest(name))
            except InvalidPayload as exc:
                log.warning("cost exports: %s", exc)
                state.bad_manifests.append(name)
        plans = [await self._plan(manifest, resume) for manifest in newest_runs(manifests)]
        state.manifests = len(plans)
        state.partitions = sum(len(plan.manifest.blobs) for plan in plans)
        state.resumed = sum(len(plan.keep) for plan in plans if not plan.complete)
        if progress is not None:
            progress(state)
        try:
            for plan in plans:
                await self._follow(plan, state, progress)
        finally:
            self._parquet_thread.shutdown(wait=False, cancel_futures=True)
        return state

    async def _plan(self, manifest: Manifest, resume: bool) -> _Plan:
        """What to do with one run: the ETag of each partition and those to keep."""
        etags = await self._client.etags(manifest.run_key)
        checkpoints = await costs.blob_states(self._store, [b.name for b in manifest.blobs])
        complete = bool(await costs.completed_runs(self._store, [manifest.run_key]))
        keep = set()
        for blob in manifest.blobs:
            saved = checkpoints.get(blob.name)
            if saved is None or saved.status not in (costs.DONE, costs.QUARANTINED):
                continue
            if saved.etag == etags.get(blob.name, "") and (resume or complete):
                keep.add(blob.name)
        return _Plan(manifest, etags, keep, complete)

    async def _follow(self, plan: _Plan, state: IngestProgress, progress: Progress | None) -> None:
        """Ingest the partitions of one run that need it."""
        run = export_run(plan.manifest)
        for blob in plan.manifest.blobs:
            if blob.name in plan.keep:
                state.kept += 1
            else:
                etag = plan.etags.get(blob.name, "")
                await self._partition(plan.manifest, run, blob, etag, state)
            state.done += 1
            if progress is not None:
                progress(state)

    async def _partition(
        self, manifest: Manifest, run: ExportRun, blob: ExportBlob, etag: str, state: IngestProgress
    ) -> None:
        """Stream one partition into the store, or quarantine it."""
        blob_id = await costs.start_blob(self._store, run, blob.name, etag)
        batch = self._settings.batch_size
        try:
            if not etag:
                raise CorruptPartition("the manifest lists it but the blob is missing")
            file_format = manifest.file_format.lower()
            if file_format == "csv":
                sums = await self._csv(manifest, blob, etag, blob_id)
            elif file_format == "parquet":
                sums = await self._parquet(blob, etag, blob_id)
            else:
                raise CorruptPartition(
                    f"{manifest.file_format} partitions are not read (CSV and Parquet only)"
                )
            await costs.finish_blob(self._store, blob_id, sums.rows, sums.take(), batch=batch)
        except CorruptPartition as exc:
            log.warning("cost exports: quarantined %s: %s", blob.name, exc)
            await costs.quarantine_blob(self._store, blob_id, str(exc))
            state.quarantined += 1
            return
        state.ingested += 1
        state.rows += sums.rows

    async def _csv(self, manifest: Manifest, blob: ExportBlob, etag: str, blob_id: int) -> CostSums:
        """A CSV partition read chunk by chunk, its sums stored a batch at a time but the last."""
        batch = self._settings.batch_size
        parser = CostParser(gzip=manifest.gzip or blob.name.endswith(".gz"))
        async for chunk in self._client.chunks(blob.name, etag):
            await asyncio.to_thread(parser.feed, chunk)
            if parser.pending >= batch:
                await costs.add_costs(self._store, blob_id, parser.take(), batch=batch)
        parser.finish()
        return parser

    async def _parquet(self, blob: ExportBlob, etag: str, blob_id: int) -> CostSums:
        """A Parquet partition read record batch by record batch (pyarrow in a worker thread,
        its ranged downloads on this loop), its sums stored a batch at a time but the last."""
        from connectors.costexports.parquet import ParquetCosts

        batch = self._settings.batch_size
        reader = ParquetCosts()
        source = await self._client.ranged(blob.name, etag)
        loop = asyncio.get_running_loop()
        thread = self._parquet_thread
        await loop.run_in_executor(thread, reader.open, source)
        writing: asyncio.Task[None] | None = None  # one store write beside the decoding
        try:
            while await loop.run_in_executor(thread, reader.step):
                if reader.pending >= batch:
                    taken = await loop.run_in_executor(thread, reader.take)
                    if writing is not None:
                        await writing
                    writing = asyncio.create_task(
                        costs.add_costs(self._store, blob_id, taken, batch=batch)
                    )
            if writing is not None:
                await writing
        finally:  # a partition given up (quarantined) waits for its write in flight first
            if writing is not None and not writing.done():
                with contextlib.suppress(Exception):
                    await writing
        return reader
