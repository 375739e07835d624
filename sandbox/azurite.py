"""Azurite (the real storage emulator, npm ``azurite``) as ``make run`` serves it, and a small
Cost Management export written into it so ``python app.py costs ingest`` has work to do.

``serving_azurite`` starts ``azurite-blob`` from ``node_modules`` on a fixed port with its data
under a folder it is given; ``write_sample_export`` lays out one export run the way the
service does (``<dir>/<export>/<yyyyMMdd-yyyyMMdd>/<run id>/manifest.json`` and its gzipped
CSV partition) through the real azure-storage-blob SDK. Nothing here imports Warden's code.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import random
from collections.abc import AsyncIterator, Sequence
from datetime import date, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BINARY = REPO_ROOT / "node_modules" / ".bin" / "azurite-blob"
"""The blob service's launcher ``npm ci`` installs."""

DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's well-known development account and key (public, documented)."""

EXPORT = "daily-actual"
"""The sample export's name (under the ``exports`` directory of the container)."""

ACTUAL_HEADER = (
    "InvoiceSectionName,AccountName,SubscriptionId,SubscriptionName,ResourceGroup,"
    "ResourceLocation,Date,ProductName,MeterCategory,MeterName,Quantity,EffectivePrice,"
    "CostInBillingCurrency,BillingCurrency,ResourceId,Tags"
)


def installed() -> bool:
    """True when ``npm ci`` installed Azurite (``make run`` starts it only then)."""
    return BINARY.exists()


def connection_string(port: int) -> str:
    """The development account's connection string for Azurite on ``port``."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};"
    )


async def _listening(port: int, proc: asyncio.subprocess.Process) -> None:
    """Return once Azurite accepts connections; ``RuntimeError`` when it exits first."""
    for _ in range(600):
        if proc.returncode is not None:
            raise RuntimeError(f"Azurite exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        await asyncio.sleep(0.1)  # a process starting up: nothing to await but its port
    raise RuntimeError("Azurite did not start listening within a minute")


@contextlib.asynccontextmanager
async def serving_azurite(port: int, location: Path) -> AsyncIterator[str]:
    """Azurite's blob service on ``port`` with its data under ``location``, until the block
    ends; yields the development account's connection string."""
    await asyncio.to_thread(location.mkdir, parents=True, exist_ok=True)
    command = [str(BINARY), "--blobHost", "127.0.0.1", "--blobPort", str(port)]
    command += ["--location", str(location), "--silent", "--skipApiVersionCheck", "--loose"]
    proc = await asyncio.create_subprocess_exec(
        *command,
        cwd=REPO_ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await _listening(port, proc)
        yield connection_string(port)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout=10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def sample_rows(resource_ids: Sequence[str], days: int, end: date) -> str:
    """Actual-cost CSV text: a cost per resource per day for the ``days`` days before ``end``."""
    rng = random.Random(0)  # noqa: S311 - sample data, not secrets
    lines = [ACTUAL_HEADER]
    for offset in range(days, 0, -1):
        day = (end - timedelta(days=offset)).strftime("%m/%d/%Y")
        for rid in resource_ids:
            parts = rid.split("/")
            subscription, group = parts[2], parts[4]
            cost = round(rng.uniform(0.2, 40.0), 4)
            lines.append(
                f"Main,Contoso,{subscription},Prod,{group},westeurope,{day},Compute,"
                f"Virtual Machines,D2 v3,24,0.1,{cost},EUR,{rid},"
            )
    return "\n".join(lines) + "\n"


def write_sample_export(
    connection: str, container: str, resource_ids: Sequence[str], *, days: int = 30
) -> str:
    """Write one export run (a gzipped partition of the last ``days`` days' costs of
    ``resource_ids``, and its manifest) into ``container``; the manifest's blob name."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient, ExponentialRetry

    end = date.today()
    start = end - timedelta(days=days)
    period = f"{start:%Y%m%d}-{end:%Y%m%d}"
    folder = f"exports/{EXPORT}/{period}/run-{end:%Y%m%d}"
    data = gzip.compress(sample_rows(resource_ids, days, end).encode(), compresslevel=1)
    # Azurite is local: a few quick retries, not the SDK's 15 s and more between them
    quick = ExponentialRetry(initial_backoff=1, increment_base=1, retry_total=2)
    with BlobServiceClient.from_connection_string(connection, retry_policy=quick) as service:
        client = service.get_container_client(container)
        with contextlib.suppress(ResourceExistsError):
            client.create_container()
        partition = f"{folder}/part_0_0001.csv.gz"
        client.upload_blob(partition, data, overwrite=True)
        manifest = {
            "manifestVersion": "2024-04-01",
            "byteCount": len(data),
            "blobCount": 1,
            "exportConfig": {"exportName": EXPORT, "type": "ActualCost", "granularity": "Daily"},
            "deliveryConfig": {
                "partitionData": True,
                "fileFormat": "Csv",
                "compressionMode": "gzip",
                "containerUri": client.url,
                "rootFolderPath": "exports",
            },
            "runInfo": {
                "executionType": "Scheduled",
                "submittedTime": f"{end:%Y-%m-%d}T02:00:00Z",
                "runId": f"run-{end:%Y%m%d}",
                "startDate": f"{start:%Y-%m-%d}T00:00:00",
                "endDate": f"{end:%Y-%m-%d}T00:00:00",
            },
            "blobs": [{"blobName": partition, "byteCount": len(data)}],
        }
        name = f"{folder}/manifest.json"
        client.upload_blob(name, json.dumps(manifest), overwrite=True)
    return name
