"""Parquet partitions summed per resource-day: columns found by name, types, corruption."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from connectors.costexports.errors import CorruptPartition
from connectors.costexports.parquet import ParquetCosts
from tests.azurite import parquet_bytes

RID = "/subscriptions/SUB-1/resourceGroups/RG-A/providers/Microsoft.Web/sites/App"


def summed(columns: dict[str, Any], row_group: int = 2) -> ParquetCosts:
    """A Parquet file of ``columns`` read to its end."""
    reader = ParquetCosts()
    reader.open(io.BytesIO(parquet_bytes(columns, row_group=row_group)))
    while reader.step():
        pass
    return reader


def test_parquet_costs_sum_per_resource_day_across_row_groups() -> None:
    """Rows of one resource-day in several row groups add up; rows without a resource are
    counted apart; the currency is the first attributed row's."""
    reader = summed(
        {
            "resourceid": [RID, RID, None, "", RID.lower()],
            "Date": ["11/02/2026", "11/02/2026", "11/02/2026", "11/02/2026", "11/03/2026"],
            "CostInBillingCurrency": [1.5, 2.25, 9.0, 9.0, 4.0],
            "BillingCurrency": ["EUR", "EUR", "USD", "USD", "EUR"],
            "Tags": ["a", "b", "c", "d", "e"],
        }
    )
    days = {(d.resource_id, d.day): d.cost for d in reader.take()}
    assert days == {(RID.lower(), "2026-11-02"): 3.75, (RID.lower(), "2026-11-03"): 4.0}
    assert (reader.rows, reader.unattributed, reader.currency) == (5, 2, "EUR")


def test_parquet_costs_read_focus_timestamps_and_decimals() -> None:
    """FOCUS columns typed as a UTC timestamp and a decimal give days and float costs."""
    import pyarrow as pa

    moments = [datetime(2026, 11, 4, tzinfo=UTC), datetime(2026, 11, 4, 12, tzinfo=UTC)]
    reader = summed(
        {
            "ResourceId": [RID, RID],
            "ChargePeriodStart": pa.array(moments, pa.timestamp("us", tz="UTC")),
            "BilledCost": pa.array([Decimal("1.10"), Decimal("2.20")], pa.decimal128(12, 4)),
        }
    )
    [day] = reader.take()
    assert day.day == "2026-11-04" and day.cost == pytest.approx(3.3) and reader.currency == ""


@pytest.mark.parametrize(
    ("columns", "reason"),
    [
        ({"ResourceId": [RID], "Date": ["11/01/2026"]}, "no costinbillingcurrency column"),
        ({"ResourceId": [1], "Date": ["11/01/2026"], "Cost": [1.0]}, "ResourceId is int64"),
        ({"ResourceId": [RID], "Date": [1.0], "Cost": [1.0]}, "Date is double"),
        ({"ResourceId": [RID], "Date": ["11/01/2026"], "Cost": ["1,5"]}, "not a number"),
        ({"ResourceId": [RID], "Date": ["11/01/2026"], "Cost": [None]}, "Cost is null"),
    ],
)
def test_parquet_costs_bad_columns_are_a_corrupt_partition(
    columns: dict[str, Any], reason: str
) -> None:
    """A missing column, a column of the wrong type or a cost that is not a number is corrupt."""
    with pytest.raises(CorruptPartition, match=reason):
        summed(columns)


def test_parquet_costs_not_parquet_is_a_corrupt_partition() -> None:
    """Bytes without Parquet's magic are refused as corrupt."""
    reader = ParquetCosts()
    with pytest.raises(CorruptPartition, match="not a readable Parquet file"):
        reader.open(io.BytesIO(b"ResourceId,Date,Cost\n"))
