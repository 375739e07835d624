"""Cost exports in the store: each partition's checkpoint and its cost per resource per day.

A partition (blob) is ingested in steps: ``start_blob`` records it as ``running`` with the
ETag being read and drops whatever it contributed before (a killed run's partial rows, or an
earlier version of the blob); ``add_costs`` upserts a batch of resource-days in one
multi-row ``INSERT … ON CONFLICT`` (a key met again adds up); ``finish_blob`` writes the last
batch and marks it ``done`` in one transaction, so the checkpoint moves only with the rows it
covers. ``quarantine_blob`` drops a corrupt partition's rows and records why.

When every partition of a run is done or quarantined the run completes, and the runs of the
same export and period submitted before it stop counting (their rows are dropped): Cost
Management rewrites the whole period in each run. Queries count completed runs only, so a
run being ingested never adds to the one it replaces.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from core.costs import ExportRun, ResourceDay
from core.store.engine import insert_for
from core.store.schema_costs import cost_daily, cost_export_blobs, cost_export_runs
from core.store.store import Store

RUNNING, DONE, QUARANTINED, SUPERSEDED = "running", "done", "quarantined", "superseded"
_COLUMNS = (
    "blob_id",
    "resource_id",
    "day",
    "cost",
    "currency",
    "subscription_id",
    "resource_group",
)


@dataclass(frozen=True)
class BlobState:
    """A partition's checkpoint."""

    name: str
    etag: str
    status: str
    rows: int
    reason: str | None
    updated_at: float


@lru_cache(maxsize=8)
def _upsert(dialect: str, count: int) -> str:
    """The multi-row upsert of ``count`` resource-days, with positional parameters (SQLite
    resolves named ones one by one, which costs seconds on a statement this wide)."""
    width = len(_COLUMNS)
    if dialect == "sqlite":
        rows = ", ".join(["(" + ", ".join("?" * width) + ")"] * count)
    else:
        rows = ", ".join(
            "(" + ", ".join(f"${i * width + j + 1}" for j in range(width)) + ")"
            for i in range(count)
        )
    columns = ", ".join(_COLUMNS)
    return (
        f"INSERT INTO cost_daily ({columns}) VALUES {rows} "  # noqa: S608 - bound values only
        "ON CONFLICT (blob_id, resource_id, day) DO UPDATE SET cost = cost_daily.cost + "
        "excluded.cost"
    )


def _write_days(conn: Connection, blob_id: int, days: Sequence[ResourceDay], size: int) -> None:
    """Upsert ``days`` for the partition, ``size`` per statement."""
    dialect = conn.dialect.name
    for at in range(0, len(days), size):
        batch = days[at : at + size]
        params: list[Any] = []
        for day in batch:
            params += (
                blob_id,
                day.resource_id,
                day.day,
                day.cost,
                day.currency,
                day.subscription_id,
                day.resource_group,
            )
        sql = _upsert(dialect, len(batch))
        if dialect == "sqlite":
            conn.connection.driver_connection.execute(sql, params)  # type: ignore[union-attr]
        else:
            conn.exec_driver_sql(sql, tuple(params))


async def blob_states(store: Store, names: Sequence[str]) -> dict[str, BlobState]:
    """The checkpoints of the partitions named (absent: never started)."""
    if not names:
        return {}
    stmt = select(cost_export_blobs).where(cost_export_blobs.c.name.in_(list(names)))
    async with store.reading() as conn:
        rows = (await conn.execute(stmt)).all()
    return {
        row.name: BlobState(
            row.name, row.etag, row.status, int(row.rows), row.reason, row.updated_at
        )
        for row in rows
    }


async def completed_runs(store: Store, run_keys: Sequence[str]) -> set[str]:
    """Which of ``run_keys`` have completed."""
    if not run_keys:
        return set()
    stmt = select(cost_export_runs.c.run_key).where(
        cost_export_runs.c.run_key.in_(list(run_keys)), cost_export_runs.c.completed_at.is_not(None)
    )
    async with store.reading() as conn:
        return {str(key) for key in (await conn.execute(stmt)).scalars()}


def _save_run(conn: Connection, run: ExportRun, now: float) -> None:
    stmt: Any = insert_for(conn.dialect.name, cost_export_runs).values(
        run_key=run.run_key,
        export_key=run.export_key,
        run_id=run.run_id,
        period_start=run.period_start,
        period_end=run.period_end,
        submitted_at=run.submitted_at,
        blobs=run.blobs,
        started_at=now,
    )
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["run_key"]))


async def start_blob(store: Store, run: ExportRun, name: str, etag: str) -> int:
    """Record partition ``name`` of ``run`` as being read at ``etag``, dropping whatever it
    contributed before; its id, for ``add_costs`` and ``finish_blob``."""

    def write(conn: Connection, _: None) -> int:
        now = time.time()
        _save_run(conn, run, now)
        values = {"etag": etag, "status": RUNNING, "rows": 0, "reason": None, "updated_at": now}
        stmt: Any = insert_for(conn.dialect.name, cost_export_blobs).values(
            name=name, run_key=run.run_key, **values
        )
        conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=values))
        blob_id = int(
            conn.execute(
                select(cost_export_blobs.c.id).where(cost_export_blobs.c.name == name)
            ).scalar_one()
        )
        conn.execute(delete(cost_daily).where(cost_daily.c.blob_id == blob_id))
        return blob_id

    return await store.run_write(write, None)


async def add_costs(
    store: Store, blob_id: int, days: Sequence[ResourceDay], *, batch: int = 4000
) -> None:
    """Upsert ``days`` for the partition (a resource-day met again adds up)."""
    if days:
        await store.run_write(lambda conn, _: _write_days(conn, blob_id, days, batch), None)


async def finish_blob(
    store: Store, blob_id: int, rows: int, days: Sequence[ResourceDay], *, batch: int = 4000
) -> bool:
    """Write the partition's last ``days`` and mark it done (``rows`` read), in one
    transaction; True when that completed its run."""

    def write(conn: Connection, _: None) -> bool:
        _write_days(conn, blob_id, days, batch)
        return _close_blob(conn, blob_id, DONE, rows, None)

    return await store.run_write(write, None)


async def quarantine_blob(store: Store, blob_id: int, reason: str) -> bool:
    """Drop the partition's rows and record it quarantined with ``reason``; True when that
    completed its run."""

    def write(conn: Connection, _: None) -> bool:
        conn.execute(delete(cost_daily).where(cost_daily.c.blob_id == blob_id))
        return _close_blob(conn, blob_id, QUARANTINED, 0, reason[:2000])

    return await store.run_write(write, None)


def _close_blob(conn: Connection, blob_id: int, status: str, rows: int, reason: str | None) -> bool:
    """Mark the partition ``status``; complete its run when no partition is left."""
    now = time.time()
    blobs = cost_export_blobs
    conn.execute(
        update(blobs)
        .where(blobs.c.id == blob_id)
        .values(status=status, rows=rows, reason=reason, updated_at=now)
    )
    run_key = conn.execute(select(blobs.c.run_key).where(blobs.c.id == blob_id)).scalar_one()
    run = conn.execute(select(cost_export_runs).where(cost_export_runs.c.run_key == run_key)).one()
    closed = conn.execute(
        select(func.count())
        .select_from(blobs)
        .where(blobs.c.run_key == run_key, blobs.c.status.in_((DONE, QUARANTINED)))
    ).scalar_one()
    if run.completed_at is not None or closed < run.blobs:
        return False
    conn.execute(
        update(cost_export_runs)
        .where(cost_export_runs.c.run_key == run_key)
        .values(completed_at=now)
    )
    _supersede(conn, run.export_key, run_key, run.submitted_at)
    return True


def _supersede(conn: Connection, export_key: str, run_key: str, submitted_at: float) -> None:
    """Drop the rows of the runs of ``export_key`` submitted before ``run_key``."""
    older = select(cost_export_runs.c.run_key).where(
        cost_export_runs.c.export_key == export_key,
        cost_export_runs.c.run_key != run_key,
        cost_export_runs.c.submitted_at <= submitted_at,
    )
    ids = select(cost_export_blobs.c.id).where(cost_export_blobs.c.run_key.in_(older))
    conn.execute(delete(cost_daily).where(cost_daily.c.blob_id.in_(ids)))
    conn.execute(
        update(cost_export_blobs)
        .where(cost_export_blobs.c.run_key.in_(older))
        .values(status=SUPERSEDED)
    )
