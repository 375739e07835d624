"""Settings, export rows and stored costs for the cost exports ingest tests (CSV, Parquet)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from azure.storage.blob import ContainerClient
from pydantic import SecretStr
from sqlalchemy import select

from core.settings import Settings
from core.settings.costs import CostsSettings
from core.store import cost_queries
from core.store.schema_costs import cost_daily
from core.store.store import Store
from tests.azurite import Azurite, resource_id

NOVEMBER = (date(2026, 11, 1), date(2026, 11, 30))
Row = tuple[str, str, float]


def settings_for(azurite: Azurite, container: ContainerClient, **costs: Any) -> Settings:
    """Settings that ingest the exports of ``container`` in Azurite."""
    options = CostsSettings(
        connection_string=SecretStr(azurite.connection_string),
        container=container.container_name,
        **costs,
    )
    values: dict[str, Any] = {"costs": options, "auto_migrate": False}
    return Settings(**values)


def rows_for(resources: int, days: int, *, us_dates: bool = True, scale: float = 1.0) -> list[Row]:
    """Two rows per resource per day (two meters), costs that differ per resource and day."""
    out: list[Row] = []
    for day in range(1, days + 1):
        shown = f"11/{day:02d}/2026" if us_dates else f"2026-11-{day:02d}"
        for index in range(resources):
            rid = resource_id(index, "rg-app" if index % 2 else "rg-data")
            out.append((rid, shown, round(scale * (index + 1) * 0.25, 4)))
            out.append((rid, shown, round(scale * day * 0.01, 4)))
    return out


def expected(rows: list[Row]) -> dict[str, float]:
    """The cost per resource (lower-cased id) the rows add up to."""
    sums: dict[str, float] = defaultdict(float)
    for rid, _, cost in rows:
        sums[rid.lower()] += cost
    return dict(sums)


def split(rows: list[Row], parts: int) -> list[list[Row]]:
    """``rows`` in ``parts`` partitions (a resource-day may span two)."""
    size = -(-len(rows) // parts)
    return [rows[i : i + size] for i in range(0, len(rows), size)]


async def costs_of(store: Store, rows: list[Row]) -> dict[str, float]:
    """The stored cost of every resource the rows name, over November."""
    found = await cost_queries.resource_costs(store, [r[0] for r in rows], *NOVEMBER)
    return {rid: item.cost for rid, item in found.items()}


async def daily_rows(store: Store) -> list[tuple[Any, ...]]:
    """Every stored resource-day, in a stable order."""
    stmt = select(cost_daily).order_by(cost_daily.c.blob_id, cost_daily.c.resource_id)
    async with store.reading() as conn:
        return [tuple(row) for row in (await conn.execute(stmt)).all()]


def by_resource_day(rows: list[tuple[Any, ...]]) -> dict[tuple[str, str], tuple[Any, ...]]:
    """``cost_daily`` rows by (resource, day), their blob ids left out: (cost, currency,
    subscription, resource group), the costs of one resource-day added up."""
    out: dict[tuple[str, str], tuple[Any, ...]] = {}
    for _blob, resource, day, cost, *rest in rows:
        earlier = out.get((resource, day))
        out[(resource, day)] = (cost + (earlier[0] if earlier else 0.0), *rest)
    return out
