"""Cost exports: cost rows ingested per second from Azurite, against a bare read of the files.

One run, one machine: Azurite (npm ``azurite``) serves a generated actual-cost export (CSV,
gzip, partitions of ~100 MB of CSV); this process first reads every partition with the same
client and parser and stores nothing (the ceiling), then runs Warden's ingest into a fresh
SQLite store. Prints rows per second of each, the ingest/read ratio (goal ≥ 0.5) and the
peak resident memory growth during the ingest (goal < 100 MB). Full run: a 1 GB export;
``--quick``: 50 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench.turns import pin_here_to_cpu1
from connectors.costexports.client import ExportsClient
from connectors.costexports.ingest import newest_runs
from connectors.costexports.mapping import CostParser
from core.settings import Settings
from core.settings_costs import CostsSettings
from core.store.store import Store
from tests.azurite import Azurite, big_partition, day_block, run_azurite, write_export
from wiring.costs import ingest_now

CONTAINER = "bench-exports"


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


async def bare_read(settings: CostsSettings) -> tuple[int, float]:
    """Every partition read and parsed, nothing stored: (rows, seconds)."""
    client = ExportsClient.from_settings(settings)
    rows, started = 0, time.perf_counter()
    try:
        names = await client.manifest_names("")
        for manifest in newest_runs([await client.manifest(name) for name in names]):
            etags = await client.etags(manifest.run_key)
            for blob in manifest.blobs:
                parser = CostParser(gzip=manifest.gzip)
                async for chunk in client.chunks(blob.name, etags[blob.name]):
                    await asyncio.to_thread(parser.feed, chunk)
                    if parser.pending >= settings.batch_size:
                        parser.take()
                parser.finish()
                parser.take()
                rows += parser.rows
    finally:
        await client.close()
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
        options: dict[str, Any] = {
            "connection_string": SecretStr(azurite.connection_string),
            "container": CONTAINER,
        }
        settings = CostsSettings(**options)
        read, read_seconds = asyncio.run(bare_read(settings))
        rows, seconds, growth = asyncio.run(ingest(settings, Path(tmp)))
    read_rate, rate = read / read_seconds, rows / seconds
    print(f"export: {size / 2**20:,.0f} MiB of CSV (gzip), {rows:,} rows\n")
    print("| path | rows | per second | vs read |\n|---|---|---|---|")
    print(f"| bare read (client + parser) | {read:,} | {read_rate:,.0f} | 1.00 |")
    print(f"| Warden ingest → SQLite | {rows:,} | {rate:,.0f} | {rate / read_rate:.2f} |")
    print(
        f"\ningest/read = {rate / read_rate:.2f} (goal ≥ 0.5); peak RSS growth during the "
        f"ingest {growth:,.0f} MiB (goal < 100 MB)."
    )


if __name__ == "__main__":
    main()
