"""Cost export partitions parsed as a stream: headers, dates, chunk boundaries, corruption."""

from __future__ import annotations

import gzip

import pytest

from connectors.costexports.errors import CorruptPartition
from connectors.costexports.mapping import (
    Columns,
    CostParser,
    manifest_from_json,
    parse_day,
    scope_of,
)
from core.errors import InvalidPayload

RID = "/subscriptions/SUB-1/resourceGroups/RG-A/providers/Microsoft.Web/sites/App"
TEXT = (
    "\ufeffResourceId,Date,CostInBillingCurrency,BillingCurrency,Tags\n"
    f'{RID},11/02/2026,1.5,EUR,"{{""note"": ""two\nlines""}}"\n'
    f"{RID},11/02/2026,2.25,EUR,\n"
    f",11/02/2026,9,EUR,\n"
    f"{RID.lower()},11/03/2026,4,EUR,\n"
)


def parsed(data: bytes, size: int, *, gz: bool = False) -> CostParser:
    """A parser fed ``data`` in chunks of ``size`` bytes, finished."""
    parser = CostParser(gzip=gz)
    for at in range(0, len(data), size):
        parser.feed(data[at : at + size])
    parser.finish()
    return parser


@pytest.mark.parametrize("size", [1, 7, 64, 10_000])
def test_cost_parser_any_chunking_sums_the_same(size: int) -> None:
    """Chunks cut anywhere (inside UTF-8, quotes, gzip) give the same sums per resource-day."""
    for data, gz in ((TEXT.encode(), False), (gzip.compress(TEXT.encode()), True)):
        parser = parsed(data, size, gz=gz)
        days = {(d.resource_id, d.day): d.cost for d in parser.take()}
        assert days == {(RID.lower(), "2026-11-02"): 3.75, (RID.lower(), "2026-11-03"): 4.0}
        assert (parser.rows, parser.unattributed, parser.currency) == (4, 1, "EUR")


def test_cost_parser_bad_gzip_is_a_corrupt_partition() -> None:
    """Bytes that are not gzip are refused as corrupt."""
    with pytest.raises(CorruptPartition, match="gzip"):
        parsed(b"\x1f\x8b\x08\x00garbage-garbage", 100, gz=True)


def test_cost_parser_truncated_gzip_is_a_corrupt_partition() -> None:
    """A gzip stream cut short is refused when the partition ends."""
    data = gzip.compress(TEXT.encode() * 50)
    with pytest.raises(CorruptPartition, match="ends early"):
        parsed(data[: len(data) // 2], 100, gz=True)


def test_cost_parser_bad_date_is_a_corrupt_partition() -> None:
    """A date that is neither ISO nor MM/DD/YYYY is refused when the sums are taken."""
    parser = parsed(b"ResourceId,Date,Cost\n/x,yesterday,1\n", 100)
    with pytest.raises(CorruptPartition, match="not a date"):
        parser.take()


def test_columns_focus_header_is_found_case_insensitively() -> None:
    """FOCUS's ResourceId, ChargePeriodStart, BilledCost and BillingCurrency are found."""
    header = ["BilledCost", "billingcurrency", "ChargePeriodStart", "RESOURCEID"]
    assert Columns.from_header(header) == Columns(resource=3, day=2, cost=0, currency=1)


def test_parse_day_us_and_iso_forms_give_iso() -> None:
    """US dates and ISO date-times both become YYYY-MM-DD."""
    assert parse_day("11/02/2026") == parse_day("2026-11-02T00:00:00Z") == "2026-11-02"


def test_scope_of_resource_id_gives_subscription_and_group() -> None:
    """The subscription and resource group come from the id, lower-cased."""
    assert scope_of(RID) == ("sub-1", "rg-a")
    assert scope_of("/providers/Microsoft.Billing/x") == ("", "")


def test_manifest_without_blobs_is_invalid() -> None:
    """A manifest missing its blob list is refused naming the field."""
    with pytest.raises(InvalidPayload) as caught:
        manifest_from_json("d/e/20261101-20261130/r1/manifest.json", {"runInfo": {}})
    assert caught.value.field == "blobs"


def test_manifest_keys_name_the_export_period_and_run() -> None:
    """The run key is the manifest's folder, the export key drops the run id."""
    body = {
        "blobs": [{"blobName": "d/e/20261101-20261130/r1/part_0_0001.csv.gz", "byteCount": 3}],
        "runInfo": {"runId": "r1", "submittedTime": "2026-11-25T02:00:00Z"},
        "deliveryConfig": {"fileFormat": "Csv", "compressionMode": "gzip"},
    }
    manifest = manifest_from_json("d/e/20261101-20261130/r1/manifest.json", body)
    assert (manifest.export_key, manifest.run_key, manifest.gzip) == (
        "d/e/20261101-20261130",
        "d/e/20261101-20261130/r1",
        True,
    )


def test_cost_parser_ids_differing_in_case_and_times_of_one_day_add_up() -> None:
    """One resource-day written with two id casings and two times is taken once, summed
    (a batch upsert may not meet one key twice)."""
    text = (
        "ResourceId,ChargePeriodStart,BilledCost\n"
        f"{RID},2026-11-02T00:00:00Z,1\n"
        f"{RID.lower()},2026-11-02T00:00:00Z,2\n"
        f"{RID},2026-11-02T12:00:00Z,4\n"
    )
    taken = parsed(text.encode(), 10_000).take()
    assert [(d.resource_id, d.day, d.cost) for d in taken] == [(RID.lower(), "2026-11-02", 7.0)]
