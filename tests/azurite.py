"""Azurite (the real storage emulator, npm ``azurite``) for the tests, and export writers.

``run_azurite`` starts ``azurite-blob`` on a free port with its data in a temp folder;
``write_export`` lays out a Cost Management export run the way the service does
(``<dir>/<export>/<yyyyMMdd-yyyyMMdd>/<run id>/manifest.json`` and its partitions), through
the real azure-storage-blob SDK.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import subprocess
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContainerClient

from sandbox.azurite import BINARY, installed
from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's well-known development account key (public, documented)."""

ACTUAL_HEADER = (
    "InvoiceSectionName,AccountName,SubscriptionId,SubscriptionName,ResourceGroup,"
    "ResourceLocation,Date,ProductName,MeterCategory,MeterName,Quantity,EffectivePrice,"
    "CostInBillingCurrency,BillingCurrency,ResourceId,Tags"
)
FOCUS_HEADER = (
    "BilledCost,BillingAccountId,BillingCurrency,ChargePeriodEnd,ChargePeriodStart,"
    "ConsumedQuantity,EffectiveCost,ResourceId,ResourceName,ServiceName,SubAccountId,"
    "x_ResourceGroupName"
)
SUBSCRIPTION = "00000000-0000-0000-0000-0000000000c5"


@dataclass(frozen=True)
class Azurite:
    """A running Azurite blob service."""

    port: int
    connection_string: str

    def container(self, name: str) -> ContainerClient:
        """The container ``name`` (created when missing)."""
        service = BlobServiceClient.from_connection_string(self.connection_string)
        client = service.get_container_client(name)
        with contextlib.suppress(ResourceExistsError):
            client.create_container()
        return client


@contextlib.contextmanager
def run_azurite(location: Path) -> Iterator[Azurite]:
    """Azurite's blob service on a free port, data under ``location``, until the block ends."""
    assert installed(), f"Azurite is not installed at {BINARY} (`npm ci` installs it)"
    port = free_port()
    command = [  # the launcher itself, not through npx: stopping it stops Azurite
        str(BINARY),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(location),
        "--silent",
        "--skipApiVersionCheck",
        "--loose",
    ]
    log = location / "azurite.log"
    with log.open("wb") as errors:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errors)
    try:
        _wait_listening(port, proc, log)
        yield Azurite(
            port,
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={DEV_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;",
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Return once Azurite accepts connections; raise when it exits first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Azurite exited with {proc.returncode}: {log.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)  # a process starting up: nothing to await but its port
    raise RuntimeError("Azurite did not start listening")


def resource_id(index: int, group: str = "rg-app") -> str:
    """A realistic ARM id of test resource ``index`` (mixed case, as exports write it)."""
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group.upper()}/providers/"
        f"Microsoft.Compute/virtualMachines/VM-{index:04d}"
    )


def actual_rows(rows: Iterable[tuple[str, str, float]]) -> str:
    """Actual-cost CSV text (header first) of (resource id, ``MM/DD/YYYY`` day, cost) rows."""
    lines = [ACTUAL_HEADER]
    for rid, day, cost in rows:
        group = rid.split("/")[4] if rid else ""
        lines.append(
            f'Main,Contoso,{SUBSCRIPTION},Prod,{group},westeurope,{day},"Virtual Machines, D2",'
            f'Virtual Machines,D2 v3,24,0.1,{cost},EUR,{rid},"{{""owner"": ""ops""}}"'
        )
    return "\n".join(lines) + "\n"


def focus_rows(rows: Iterable[tuple[str, str, float]]) -> str:
    """FOCUS CSV text (header first) of (resource id, ``YYYY-MM-DD`` day, cost) rows."""
    lines = [FOCUS_HEADER]
    for rid, day, cost in rows:
        lines.append(
            f"{cost},acct,EUR,{day}T00:00:00Z,{day}T00:00:00Z,24,{cost},{rid},vm,"
            f"Virtual Machines,/subscriptions/{SUBSCRIPTION},rg-app"
        )
    return "\n".join(lines) + "\n"


def write_export(
    container: ContainerClient,
    partitions: list[bytes],
    *,
    export: str = "daily-actual",
    period: str = "20261101-20261130",
    run_id: str = "run-1",
    submitted: str = "2026-11-25T02:00:00Z",
    compression: str = "gzip",
    file_format: str = "Csv",
    directory: str = "exports",
) -> list[str]:
    """Upload one export run (``partitions`` as given, already compressed or not) and its
    manifest; the partitions' blob names."""
    folder = f"{directory}/{export}/{period}/{run_id}"
    suffix = ".csv.gz" if compression == "gzip" else ".csv"
    if file_format == "Parquet":
        suffix = ".snappy.parquet" if compression == "snappy" else ".parquet"
    names = [f"{folder}/part_0_{i + 1:04d}{suffix}" for i in range(len(partitions))]
    for name, data in zip(names, partitions, strict=True):
        container.upload_blob(name, data, overwrite=True)
    start, end = period.split("-")
    manifest = {
        "manifestVersion": "2024-04-01",
        "byteCount": sum(len(p) for p in partitions),
        "blobCount": len(partitions),
        "exportConfig": {"exportName": export, "type": "ActualCost", "granularity": "Daily"},
        "deliveryConfig": {
            "partitionData": True,
            "fileFormat": file_format,
            "compressionMode": compression,
            "containerUri": container.url,
            "rootFolderPath": directory,
        },
        "runInfo": {
            "executionType": "Scheduled",
            "submittedTime": submitted,
            "runId": run_id,
            "startDate": f"{start[:4]}-{start[4:6]}-{start[6:]}T00:00:00",
            "endDate": f"{end[:4]}-{end[4:6]}-{end[6:]}T00:00:00",
        },
        "blobs": [
            {"blobName": name, "byteCount": len(data)}
            for name, data in zip(names, partitions, strict=True)
        ],
    }
    container.upload_blob(f"{folder}/manifest.json", json.dumps(manifest), overwrite=True)
    return names


def parquet_rows(
    rows: Iterable[tuple[str, str, float]], *, focus: bool = False, compression: str = "snappy"
) -> bytes:
    """A Parquet partition (pyarrow) of (resource id, day, cost) rows: actual-cost columns
    (``MM/DD/YYYY`` text dates, double costs) or FOCUS ones (``YYYY-MM-DD`` days as UTC
    timestamps, decimal costs), in two row groups."""
    import decimal
    from datetime import UTC, datetime

    import pyarrow as pa

    listed = list(rows)
    ids, days, costs = [r[0] for r in listed], [r[1] for r in listed], [r[2] for r in listed]
    text = pa.array(["x"] * len(listed))
    if focus:
        moments = [datetime.fromisoformat(day).replace(tzinfo=UTC) for day in days]
        columns = {
            "BilledCost": pa.array([decimal.Decimal(str(c)) for c in costs], pa.decimal128(18, 6)),
            "BillingAccountId": text,
            "BillingCurrency": pa.array(["EUR"] * len(listed)),
            "ChargePeriodStart": pa.array(moments, pa.timestamp("us", tz="UTC")),
            "EffectiveCost": pa.array(costs, pa.float64()),
            "ResourceId": pa.array(ids),
            "ServiceName": text,
        }
    else:
        columns = {
            "SubscriptionId": pa.array([SUBSCRIPTION] * len(listed)),
            "Date": pa.array(days),
            "MeterName": text,
            "Quantity": pa.array([24.0] * len(listed)),
            "CostInBillingCurrency": pa.array(costs, pa.float64()),
            "BillingCurrency": pa.array(["EUR"] * len(listed)),
            "ResourceId": pa.array(ids),
        }
    return parquet_bytes(columns, compression=compression, row_group=max(1, -(-len(listed) // 2)))


def parquet_bytes(columns: dict[str, Any], *, compression: str = "snappy", row_group: int) -> bytes:
    """A Parquet file (pyarrow) of ``columns`` (names to arrays or lists), ``row_group`` rows
    a row group."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink, compression=compression, row_group_size=row_group)
    return sink.getvalue()


def gz(text: str) -> bytes:
    """``text`` gzipped, as exports compress partitions."""
    return gzip.compress(text.encode(), compresslevel=1)


def day_block(resources: int, meters: int, day: int, cost: float = 0.5) -> str:
    """Actual-cost CSV rows (no header) of ``resources`` resources × ``meters`` meters on
    November ``day``, each row costing ``cost``."""
    lines = []
    for index in range(resources):
        rid = resource_id(index)
        for meter in range(meters):
            lines.append(
                f"Main,Contoso,{SUBSCRIPTION},Prod,rg-app,westeurope,11/{day:02d}/2026,"
                f'"Virtual Machines, D2",Virtual Machines,Meter {meter},24,0.1,{cost},EUR,{rid},'
            )
    return "\n".join(lines) + "\n"


def big_partition(block: str, days: range, repeat: int) -> Iterator[bytes]:
    """One gzip member of the header and ``block`` (for day 1) repeated ``repeat`` times for
    each day of ``days``, compressed piece by piece."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    yield packer.compress((ACTUAL_HEADER + "\n").encode())
    for day in days:
        text = block.replace("11/01/2026", f"11/{day:02d}/2026").encode()
        for _ in range(repeat):
            yield packer.compress(text)
    yield packer.flush()


def big_parquet(
    resources: int, meters: int, days: range, repeat: int, *, random_costs: bool = False
) -> bytes:
    """An actual-cost Parquet partition (snappy): for each day of ``days``, ``repeat`` times
    ``resources`` × ``meters`` rows costing 0.5 each (or a random cost below 40, incompressible,
    with ``random_costs``), in row groups of about 1 Mi rows."""
    import io

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    ids = pa.array([resource_id(i) for i in range(resources) for _ in range(meters)])
    per_write = max(1, (1 << 20) // len(ids))
    schema = pa.schema(
        [
            ("SubscriptionId", pa.string()),
            ("Date", pa.string()),
            ("CostInBillingCurrency", pa.float64()),
            ("BillingCurrency", pa.string()),
            ("ResourceId", pa.string()),
        ]
    )
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, schema, compression="snappy") as writer:
        for day in days:
            for first in range(0, repeat, per_write):
                size = min(per_write, repeat - first) * len(ids)
                cost = pc.multiply(pc.random(size), 40.0) if random_costs else pa.repeat(0.5, size)
                writer.write_table(
                    pa.table(
                        [
                            pa.repeat(SUBSCRIPTION, size),
                            pa.repeat(f"11/{day:02d}/2026", size),
                            cost,
                            pa.repeat("EUR", size),
                            pa.concat_arrays([ids] * (size // len(ids))),
                        ],
                        schema=schema,
                    )
                )
    return sink.getvalue()
