"""What the ingested cost exports answer: cost per resource, top resources, quarantined parts.

Only completed runs count (``core.store.costs``): a run being ingested adds nothing until its
last partition is in, and then it replaces the runs of the same export and period before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Select, and_, func, select

from core.costs import ResourceCost
from core.store.costs import DONE, QUARANTINED
from core.store.schema_costs import cost_daily, cost_export_blobs, cost_export_runs
from core.store.store import Store


@dataclass(frozen=True)
class Quarantined:
    """A partition set aside: its blob name, why, and when."""

    name: str
    reason: str
    at: datetime


def _counted(*columns: Any) -> Select[Any]:
    """``SELECT columns`` over the resource-days of completed runs' ingested partitions."""
    stmt: Select[Any] = (
        select(*columns)
        .select_from(
            cost_daily.join(cost_export_blobs, cost_export_blobs.c.id == cost_daily.c.blob_id).join(
                cost_export_runs, cost_export_runs.c.run_key == cost_export_blobs.c.run_key
            )
        )
        .where(cost_export_blobs.c.status == DONE, cost_export_runs.c.completed_at.is_not(None))
    )
    return stmt


async def resource_costs(
    store: Store, resource_ids: Sequence[str], start: date, end: date
) -> dict[str, ResourceCost]:
    """Cost of each resource (any case) from ``start`` to ``end`` inclusive; the resources
    no export reported are absent."""
    wanted = sorted({rid.lower() for rid in resource_ids})
    if not wanted:
        return {}
    found: dict[str, ResourceCost] = {}
    for at in range(0, len(wanted), 500):
        stmt = (
            _counted(
                cost_daily.c.resource_id,
                func.sum(cost_daily.c.cost),
                func.max(cost_daily.c.currency),
            )
            .where(
                cost_daily.c.resource_id.in_(wanted[at : at + 500]),
                cost_daily.c.day >= start.isoformat(),
                cost_daily.c.day <= end.isoformat(),
            )
            .group_by(cost_daily.c.resource_id)
        )
        async with store.reading() as conn:
            for rid, cost, currency in (await conn.execute(stmt)).all():
                found[str(rid)] = ResourceCost(str(rid), float(cost), str(currency or ""))
    return found


async def top_resources(
    store: Store,
    subscription_id: str,
    start: date,
    end: date,
    *,
    resource_group: str | None = None,
    limit: int = 10,
) -> list[ResourceCost]:
    """The ``limit`` costliest resources of a subscription (or one of its resource groups)
    from ``start`` to ``end`` inclusive, costliest first (ties by resource id)."""
    total = func.sum(cost_daily.c.cost).label("total")
    conditions = [
        cost_daily.c.subscription_id == subscription_id.lower(),
        cost_daily.c.day >= start.isoformat(),
        cost_daily.c.day <= end.isoformat(),
    ]
    if resource_group is not None:
        conditions.append(cost_daily.c.resource_group == resource_group.lower())
    stmt = (
        _counted(
            cost_daily.c.resource_id,
            total,
            func.max(cost_daily.c.currency),
            func.max(cost_daily.c.resource_group),
        )
        .where(and_(*conditions))
        .group_by(cost_daily.c.resource_id)
        .order_by(total.desc(), cost_daily.c.resource_id)
        .limit(limit)
    )
    async with store.reading() as conn:
        rows = (await conn.execute(stmt)).all()
    return [ResourceCost(str(r[0]), float(r[1]), str(r[2] or ""), str(r[3] or "")) for r in rows]


async def quarantined(store: Store) -> list[Quarantined]:
    """Every quarantined partition, newest first."""
    blobs = cost_export_blobs
    stmt = (
        select(blobs.c.name, blobs.c.reason, blobs.c.updated_at)
        .where(blobs.c.status == QUARANTINED)
        .order_by(blobs.c.updated_at.desc(), blobs.c.name)
    )
    async with store.reading() as conn:
        rows = (await conn.execute(stmt)).all()
    return [
        Quarantined(str(r.name), str(r.reason or ""), datetime.fromtimestamp(r.updated_at, UTC))
        for r in rows
    ]
