"""Cost exports: cost rows ingested per second from Azurite, against a bare read of the files.

One run, one machine: Azurite (npm ``azurite``) serves a generated actual-cost export (CSV,
gzip, partitions of ~100 MB of CSV); this process first reads every partition with the same
client and parser and stores nothing (the ceiling), then runs Warden's ingest into a fresh
SQLite store. Prints rows per second of each, the ingest/read ratio (goal ≥ 0.5) and the
peak resident memory growth during the ingest (goal < 100 MB). Full run: a 1 GB export;
``--quick``: 50 MB. The same rows are then exported as Parquet (snappy, incompressible
costs) and Warden's ingest of it is set against a bare pyarrow read of its four columns
through the same ranged downloads.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench.turns import pin_here_to_cpu1
from connectors.costexports.client import ExportsClient
from connectors.costexports.ingest import newest_runs
from connectors.costexports.mapping import CostParser, Manifest
from core.settings import Settings
from core.settings.costs import CostsSettings
from core.store.store import Store
from tests.azurite import (
    Azurite,
    big_parquet,
    big_partition,
    day_block,
    run_azurite,
    write_export,
)
from wiring.costs import ingest_now

CONTAINER = "bench-exports"
PARQUET_CONTAINER = "bench-exports-parquet"
PARQUET_COLUMNS = ["ResourceId", "Date", "CostInBillingCurrency", "BillingCurrency"]


def rss_mib() -> float:
    """This process's resident memory in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakSampler:
    """The highest RSS seen every 20 ms while running (a thread)."""

    def __init__(self) -> None:
        self.peak = rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mib())

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def generate(azurite: Azurite, megabytes: int) -> int:
    """Upload an export of about ``megabytes`` MB of CSV; the CSV bytes written."""
    block = day_block(2000, 2, 1)
    parts = max(1, megabytes // 100)
    repeat = max(1, -(-(megabytes << 20) // (len(block) * 3 * parts)))
    container = azurite.container(CONTAINER)
    data = [
        b"".join(big_partition(block, range(3 * i + 1, 3 * i + 4), repeat)) for i in range(parts)
    ]
    write_export(container, data)
    return parts * 3 * repeat * len(block)


def generate_parquet(azurite: Azurite, megabytes: int) -> int:
    """Upload the rows ``generate`` writes for ``megabytes`` as a Parquet export (snappy);
    the Parquet bytes written."""
    block = day_block(2000, 2, 1)
    parts = max(1, megabytes // 100)
    repeat = max(1, -(-(megabytes << 20) // (len(block) * 3 * parts)))
    data = [
        big_parquet(2000, 2, range(3 * i + 1, 3 * i + 4), repeat, random_costs=True)
        for i in range(parts)
    ]
    write_export(
        azurite.container(PARQUET_CONTAINER), data, file_format="Parquet", compression="snappy"
    )
    return sum(len(part) for part in data)


async def partitions(
    settings: CostsSettings,
) -> AsyncIterator[tuple[ExportsClient, Manifest, str, str]]:
    """Every partition of the newest runs: (client, manifest, blob name, ETag)."""
    client = ExportsClient.from_settings(settings)
    try:
        names = await client.manifest_names("")
        for manifest in newest_runs([await client.manifest(name) for name in names]):
            etags = await client.etags(manifest.run_key)
            for blob in manifest.blobs:
                yield client, manifest, blob.name, etags[blob.name]
    finally:
        await client.close()


async def bare_read(settings: CostsSettings) -> tuple[int, float]:
    """Every partition read and parsed, nothing stored: (rows, seconds)."""
    rows, started = 0, time.perf_counter()
    async for client, manifest, name, etag in partitions(settings):
        parser = CostParser(gzip=manifest.gzip)
        async for chunk in client.chunks(name, etag):
            await asyncio.to_thread(parser.feed, chunk)
            if parser.pending >= settings.batch_size:
                parser.take()
        parser.finish()
        parser.take()
        rows += parser.rows
    return rows, time.perf_counter() - started


def _scan(source: Any) -> int:
    """The rows of a Parquet file read by pyarrow alone (the four columns Warden reads)."""
    import pyarrow.parquet as pq

    file = pq.ParquetFile(source, buffer_size=1 << 20, pre_buffer=False)
    return sum(batch.num_rows for batch in file.iter_batches(columns=PARQUET_COLUMNS))


async def bare_parquet_read(settings: CostsSettings) -> tuple[int, float]:
    """Every Parquet partition read by pyarrow through the ranged file, nothing summed or
    stored: (rows, seconds)."""
    rows, started = 0, time.perf_counter()
    async for client, _manifest, name, etag in partitions(settings):
        source = await client.ranged(name, etag)
        rows += await asyncio.to_thread(_scan, source)
    return rows, time.perf_counter() - started


async def ingest(settings: CostsSettings, state: Path) -> tuple[int, float, float]:
    """Warden's ingest into a fresh store: (rows, seconds, peak RSS growth in MiB)."""
    store = Store.from_url(f"sqlite+aiosqlite:///{state / 'bench.db'}")
    await store.upgrade()
    gc.collect()
    before = rss_mib()
    try:
        with PeakSampler() as sampler:
            started = time.perf_counter()
            values: dict[str, Any] = {"costs": settings, "auto_migrate": False}
            done = await ingest_now(Settings(**values), store)
            seconds = time.perf_counter() - started
    finally:
        await store.close()
    return done.rows, seconds, sampler.peak - before


def measure(
    settings: CostsSettings, state: Path, read: Any, name: str
) -> tuple[int, float, int, float, float]:
    """The bare read and Warden's ingest (into ``name``'s store) of one export: rows read,
    read seconds, rows ingested, ingest seconds and peak RSS growth."""
    read_rows, read_seconds = asyncio.run(read(settings))
    folder = state / name
    folder.mkdir()
    rows, seconds, growth = asyncio.run(ingest(settings, folder))
    return read_rows, read_seconds, rows, seconds, growth


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (CI): 50 MB")
    parser.add_argument("--megabytes", type=int, default=1024, help="CSV size of the export")
    args = parser.parse_args()
    pin_here_to_cpu1()
    megabytes = 50 if args.quick else args.megabytes
    with (
        tempfile.TemporaryDirectory(prefix="warden-exports-") as tmp,
        run_azurite(Path(tmp)) as azurite,
    ):
        size = generate(azurite, megabytes)
        parquet_size = generate_parquet(azurite, megabytes)
        results = []
        for container, reader, name in (
            (CONTAINER, bare_read, "csv"),
            (PARQUET_CONTAINER, bare_parquet_read, "parquet"),
        ):
            options: dict[str, Any] = {
                "connection_string": SecretStr(azurite.connection_string),
                "container": container,
            }
            results.append(measure(CostsSettings(**options), Path(tmp), reader, name))
    print(
        f"export: {size / 2**20:,.0f} MiB of CSV (gzip), or {parquet_size / 2**20:,.0f} MiB "
        f"of Parquet (snappy); {results[0][2]:,} rows\n"
    )
    print("| path | rows | per second | vs read | peak RSS growth |\n|---|---|---|---|---|")
    labels = (
        ("bare read (client + parser)", "Warden ingest → SQLite"),
        ("Parquet: bare pyarrow read (ranged file)", "Parquet: Warden ingest → SQLite"),
    )
    for (read_label, ingest_label), (read, read_s, rows, seconds, growth) in zip(
        labels, results, strict=True
    ):
        read_rate, rate = read / read_s, rows / seconds
        print(f"| {read_label} | {read:,} | {read_rate:,.0f} | 1.00 | |")
        print(
            f"| {ingest_label} | {rows:,} | {rate:,.0f} | {rate / read_rate:.2f} "
            f"| {growth:,.0f} MiB |"
        )
    print("\ngoals: ingest/read ≥ 0.5; peak RSS growth during the ingest < 100 MB.")


if __name__ == "__main__":
    main()
