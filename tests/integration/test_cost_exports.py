"""The cost exports ingest: Cost Management exports in Azurite into cost per resource per day.

The real azure-storage-blob SDK reads from Azurite (started here); the store is SQLite and
PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient
from rich.console import Console

from cli.cmdb import last_30_days, untagged_table
from core.itsm import ConfigurationItem
from core.store import cost_queries
from core.store.cmdb_cis import StoredCi
from core.store.store import Store
from tests.azurite import (
    SUBSCRIPTION,
    Azurite,
    actual_rows,
    focus_rows,
    gz,
    parquet_bytes,
    parquet_rows,
    resource_id,
    run_azurite,
    write_export,
)
from tests.integration.costs_support import (
    by_resource_day,
    costs_of,
    daily_rows,
    expected,
    rows_for,
    settings_for,
    split,
)
from wiring.costs import ingest_now


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


@pytest.mark.parametrize("file_format", ["Csv", "Parquet"])
async def test_cost_ingest_rerun_of_the_same_export_changes_nothing(
    azurite: Azurite, container: ContainerClient, store: Store, file_format: str
) -> None:
    """A second run (CSV or Parquet) reads no partition; a partition rewritten with the same
    content (a new ETag) is read again and the costs stay the same."""
    rows = rows_for(30, 8)
    if file_format == "Csv":
        parts = [gz(actual_rows(part)) for part in split(rows, 4)]
        names = write_export(container, parts)
    else:
        parts = [parquet_rows(part) for part in split(rows, 4)]
        names = write_export(container, parts, file_format="Parquet", compression="snappy")
    settings = settings_for(azurite, container, batch_size=100)
    await ingest_now(settings, store)
    before = await daily_rows(store)
    assert await costs_of(store, rows) == pytest.approx(expected(rows))
    again = await ingest_now(settings, store)
    assert (again.ingested, again.kept, again.rows) == (0, 4, 0)
    assert await daily_rows(store) == before
    container.upload_blob(names[1], parts[1], overwrite=True)
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
        StoredCi(
            ConfigurationItem(ci_id=ci, name="vm", type="vm", last_seen_utc=seen), True, 1, None
        )
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


@pytest.mark.parametrize(
    ("compression", "focus"), [("snappy", False), ("none", True)], ids=["snappy-actual", "focus"]
)
async def test_cost_ingest_parquet_lands_the_same_costs_as_the_csv_export(
    azurite: Azurite,
    container: ContainerClient,
    store: Store,
    tmp_path: Path,
    compression: str,
    focus: bool,
) -> None:
    """A Parquet export (snappy actual-cost, or uncompressed FOCUS with timestamps and
    decimals) stores the same cost per resource per day as the same rows exported as CSV."""
    rows = rows_for(25, 6, us_dates=not focus)
    parts = split(rows, 3)
    write_export(
        container,
        [parquet_rows(part, focus=focus, compression=compression) for part in parts],
        file_format="Parquet",
        compression=compression,
    )
    state = await ingest_now(settings_for(azurite, container), store)
    assert (state.ingested, state.quarantined, state.rows) == (3, 0, len(rows))
    as_csv = azurite.container(f"csv-{uuid.uuid4().hex[:12]}")
    text = focus_rows if focus else actual_rows
    write_export(as_csv, [gz(text(part)) for part in parts])
    csv_store = Store.from_url(f"sqlite+aiosqlite:///{tmp_path / 'csv.db'}")
    await csv_store.upgrade()
    try:
        await ingest_now(settings_for(azurite, as_csv), csv_store)
        wanted = by_resource_day(await daily_rows(csv_store))
    finally:
        await csv_store.close()
    landed = by_resource_day(await daily_rows(store))
    assert landed.keys() == wanted.keys() and len(landed) == 25 * 6
    assert {k: v[1:] for k, v in landed.items()} == {k: v[1:] for k, v in wanted.items()}
    assert {k: v[0] for k, v in landed.items()} == pytest.approx(
        {k: v[0] for k, v in wanted.items()}
    )


async def test_cost_ingest_corrupt_parquet_partitions_are_quarantined_and_the_rest_ingested(
    azurite: Azurite, container: ContainerClient, store: Store
) -> None:
    """Bad magic, a truncated footer, a missing cost column, a cost of the wrong type and a
    cost that is not a number are quarantined with their names and reasons; the good
    partition's costs are stored, and the next run reads none of them again."""
    good = rows_for(10, 3)
    whole = parquet_rows(rows_for(3, 2))
    rid, day = [resource_id(1)], ["11/01/2026"]
    names = write_export(
        container,
        [
            parquet_rows(good),
            b"PAR1 this is not a parquet file at all, only text",
            whole[: len(whole) - 6],
            parquet_bytes({"ResourceId": rid, "Date": day, "Amount": [1.0]}, row_group=1),
            parquet_bytes(
                {"ResourceId": rid, "Date": day, "CostInBillingCurrency": [True]}, row_group=1
            ),
            parquet_bytes(
                {"ResourceId": rid, "Date": day, "CostInBillingCurrency": ["zero"]}, row_group=1
            ),
        ],
        file_format="Parquet",
        compression="snappy",
    )
    state = await ingest_now(settings_for(azurite, container), store)
    assert (state.ingested, state.quarantined) == (1, 5)
    assert await costs_of(store, good) == pytest.approx(expected(good))
    listed = {item.name: item.reason for item in await cost_queries.quarantined(store)}
    assert set(listed) == set(names[1:])
    assert "not a readable Parquet file" in listed[names[1]]
    assert "not a readable Parquet file" in listed[names[2]]
    assert "costinbillingcurrency" in listed[names[3]]
    assert "CostInBillingCurrency is bool" in listed[names[4]]
    assert "not a number" in listed[names[5]]
    again = await ingest_now(settings_for(azurite, container), store)
    assert (again.ingested, again.quarantined, again.kept) == (0, 0, 6)
