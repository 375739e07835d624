"""The cost exports ingest: Cost Management exports in Azurite into cost per resource per day.

The real azure-storage-blob SDK reads from Azurite (started here); the store is SQLite and
PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from azure.storage.blob import ContainerClient
from pydantic import SecretStr
from rich.console import Console
from sqlalchemy import select

from cli.cmdb import last_30_days, untagged_table
from core.itsm import ConfigurationItem
from core.settings import Settings
from core.settings_costs import CostsSettings
from core.store import cost_queries
from core.store.cmdb_cis import StoredCi
from core.store.schema_costs import cost_daily
from core.store.store import Store
from tests.azurite import (
    SUBSCRIPTION,
    Azurite,
    actual_rows,
    focus_rows,
    gz,
    resource_id,
    run_azurite,
    write_export,
)
from wiring.costs import ingest_now

NOVEMBER = (date(2026, 11, 1), date(2026, 11, 30))
Row = tuple[str, str, float]


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite's blob service, for this module."""
    with run_azurite(tmp_path_factory.mktemp("azurite")) as served:
        yield served


@pytest.fixture
def container(azurite: Azurite) -> ContainerClient:
    """A fresh container for one test."""
    return azurite.container(f"costs-{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A migrated store."""
    opened = Store.from_url(database_url)
    await opened.upgrade()
    try:
        yield opened
    finally:
        await opened.close()


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


async def test_cost_ingest_gzip_csv_sums_cost_per_resource_per_day(
    azurite: Azurite, container: ContainerClient, store: Store
) -> None:
    """Three gzip partitions of an actual-cost export: every resource's cost, summed per day."""
    rows = rows_for(40, 10)
    write_export(container, [gz(actual_rows(part)) for part in split(rows, 3)])
    state = await ingest_now(settings_for(azurite, container), store)
    assert (state.manifests, state.ingested, state.quarantined, state.rows) == (1, 3, 0, len(rows))
    assert await costs_of(store, rows) == pytest.approx(expected(rows))
    days = {row[2] for row in await daily_rows(store)}
    assert days == {f"2026-11-{d:02d}" for d in range(1, 11)}


async def test_cost_ingest_focus_columns_are_read_like_actual_cost(
    azurite: Azurite, container: ContainerClient, store: Store
) -> None:
    """An uncompressed FOCUS export (BilledCost, ChargePeriodStart) gives the same costs."""
    rows = rows_for(15, 5, us_dates=False)
    write_export(container, [focus_rows(rows).encode()], compression="none", export="focus")
    await ingest_now(settings_for(azurite, container), store)
    assert await costs_of(store, rows) == pytest.approx(expected(rows))


async def test_cost_ingest_rerun_of_the_same_export_changes_nothing(
    azurite: Azurite, container: ContainerClient, store: Store
) -> None:
    """A second run reads no partition; a partition rewritten with the same content (a new
    ETag) is read again and the costs stay the same."""
    rows = rows_for(30, 8)
    names = write_export(container, [gz(actual_rows(part)) for part in split(rows, 4)])
    settings = settings_for(azurite, container, batch_size=100)
    await ingest_now(settings, store)
    before = await daily_rows(store)
    again = await ingest_now(settings, store)
    assert (again.ingested, again.kept, again.rows) == (0, 4, 0)
    assert await daily_rows(store) == before
    container.upload_blob(names[1], gz(actual_rows(split(rows, 4)[1])), overwrite=True)
    third = await ingest_now(settings, store)
    assert (third.ingested, third.kept) == (1, 3)
    assert await costs_of(store, rows) == pytest.approx(expected(rows))
    assert len(await daily_rows(store)) == len(before)


async def test_cost_ingest_corrupt_partitions_are_quarantined_and_the_rest_ingested(
    azurite: Azurite, container: ContainerClient, store: Store
) -> None:
    """Bad gzip, a missing cost column and a cost that is not a number are quarantined with
    their names and reasons; the good partition's costs are stored."""
    good = rows_for(10, 3)
    bad_number = actual_rows(rows_for(2, 1)).replace(",0.25,EUR", ",zero,EUR")
    names = write_export(
        container,
        [
            gz(actual_rows(good)),
            b"\x1f\x8b\x08\x00 this is not gzip",
            gz("ResourceId,Date,Amount\n/subscriptions/x/y,11/01/2026,1\n"),
            gz(bad_number),
        ],
    )
    state = await ingest_now(settings_for(azurite, container), store)
    assert (state.ingested, state.quarantined) == (1, 3)
    assert await costs_of(store, good) == pytest.approx(expected(good))
    listed = {item.name: item.reason for item in await cost_queries.quarantined(store)}
    assert set(listed) == set(names[1:])
    assert "gzip" in listed[names[1]]
    assert "costinbillingcurrency" in listed[names[2]]
    assert "not a number" in listed[names[3]]
    again = await ingest_now(settings_for(azurite, container), store)
    assert (again.ingested, again.quarantined, again.kept) == (0, 0, 4)


async def test_cost_ingest_newer_run_of_a_period_replaces_the_older(
    azurite: Azurite, container: ContainerClient, store: Store
) -> None:
    """The next run of the same export and period replaces the costs of the one before."""
    first, second = rows_for(12, 4), rows_for(12, 6, scale=2.0)
    write_export(container, [gz(actual_rows(first))], run_id="run-1")
    settings = settings_for(azurite, container)
    await ingest_now(settings, store)
    assert await costs_of(store, first) == pytest.approx(expected(first))
    write_export(
        container,
        [gz(actual_rows(p)) for p in split(second, 2)],
        run_id="run-2",
        submitted="2026-11-26T02:00:00Z",
    )
    state = await ingest_now(settings, store)
    assert (state.manifests, state.ingested) == (1, 2)
    assert await costs_of(store, second) == pytest.approx(expected(second))


async def test_cost_top_resources_ranks_a_resource_group_over_a_period(
    azurite: Azurite, container: ContainerClient, store: Store
) -> None:
    """The top N of a resource group over a period are its costliest, costliest first."""
    rows = rows_for(20, 10)
    write_export(container, [gz(actual_rows(rows))])
    await ingest_now(settings_for(azurite, container), store)
    start, end = date(2026, 11, 3), date(2026, 11, 5)
    top = await cost_queries.top_resources(
        store, SUBSCRIPTION.upper(), start, end, resource_group="RG-APP", limit=3
    )
    in_period = [r for r in rows if r[1] in {"11/03/2026", "11/04/2026", "11/05/2026"}]
    wanted = expected([r for r in in_period if "/RG-APP/" in r[0]])
    ranked = sorted(wanted.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    assert [(t.resource_id, t.resource_group) for t in top] == [
        (rid, "rg-app") for rid, _ in ranked
    ]
    assert [t.cost for t in top] == pytest.approx([cost for _, cost in ranked])
    assert top[0].shown().endswith(" EUR")


async def test_cmdb_cis_show_their_cost_of_the_last_30_days(
    azurite: Azurite, container: ContainerClient, store: Store
) -> None:
    """A CI's row in the ``cmdb sync`` report shows what it cost over the last 30 days only;
    a CI no export names shows a dash."""
    today = datetime.now(UTC).date()
    inside, outside = today - timedelta(days=3), today - timedelta(days=45)
    rid = resource_id(7)
    rows = [(rid, inside.isoformat(), 12.5), (rid, today.isoformat(), 1.25)]
    rows.append((rid, outside.isoformat(), 100.0))
    period = f"{outside:%Y%m%d}-{today:%Y%m%d}"
    write_export(container, [gz(actual_rows(rows))], period=period)
    await ingest_now(settings_for(azurite, container), store)
    seen = datetime.now(UTC)
    cis = [
        StoredCi(ConfigurationItem(ciId=ci, name="vm", type="vm", lastSeenUtc=seen), True, 1, None)
        for ci in (rid.lower(), resource_id(8).lower())
    ]
    costs = await last_30_days(store, cis)
    assert {ci: cost.shown() for ci, cost in costs.items()} == {rid.lower(): "13.75 EUR"}
    console = Console(width=300, record=True)
    console.print(untagged_table(cis, costs))
    shown = console.export_text()
    assert "13.75 EUR" in shown and "100" not in shown


async def test_cost_ingest_partition_missing_from_storage_is_quarantined_once(
    azurite: Azurite, container: ContainerClient, store: Store
) -> None:
    """A partition the manifest lists but storage lacks is quarantined as missing, and not
    quarantined again by the next run."""
    rows = rows_for(5, 2)
    names = write_export(container, [gz(actual_rows(p)) for p in split(rows, 2)])
    container.delete_blob(names[1])
    settings = settings_for(azurite, container)
    state = await ingest_now(settings, store)
    assert (state.ingested, state.quarantined) == (1, 1)
    [item] = await cost_queries.quarantined(store)
    assert (item.name, "missing" in item.reason) == (names[1], True)
    again = await ingest_now(settings, store)
    assert (again.ingested, again.quarantined, again.kept) == (0, 0, 2)
