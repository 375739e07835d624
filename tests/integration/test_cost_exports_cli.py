"""``python app.py costs ingest`` as a process: killed and resumed, and a 1 GB export.

Azurite serves the exports; the store is SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient
from sqlalchemy import select

from core.crypto import generate_key
from core.store import cost_queries
from core.store.costs import DONE
from core.store.schema_costs import cost_export_blobs
from core.store.store import Store
from tests.azurite import (
    Azurite,
    big_parquet,
    big_partition,
    day_block,
    resource_id,
    run_azurite,
    write_export,
)

ROOT = Path(__file__).resolve().parents[2]
KEY = generate_key()
NOVEMBER = (date(2026, 11, 1), date(2026, 11, 30))


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite's blob service, for this module."""
    with run_azurite(tmp_path_factory.mktemp("azurite")) as served:
        yield served


@pytest.fixture
def container(azurite: Azurite) -> ContainerClient:
    """A fresh container for one test."""
    return azurite.container(f"costs-{uuid.uuid4().hex[:12]}")


def cli_env(azurite: Azurite, container: str, database_url: str, var: Path) -> dict[str, str]:
    """The environment of a ``costs ingest`` command against Azurite."""
    return {
        **os.environ,
        "WARDEN_DATABASE_URL": database_url,
        "WARDEN_VAR_DIR": str(var),
        "WARDEN_ENCRYPTION_KEYS": KEY,
        "WARDEN_COSTS__CONNECTION_STRING": azurite.connection_string,
        "WARDEN_COSTS__CONTAINER": container,
        "COLUMNS": "200",
    }


def run_measured(command: list[str], env: dict[str, str], log: Path) -> tuple[int, bytes, int]:
    """Run ``command`` (its output into ``log``); its exit status, output and peak RSS (KiB).

    The peak is the process's own high-water mark (``VmHWM``), read until it exits: the
    kernel's ``ru_maxrss`` of a child also counts what the forking test process held.
    """
    peak = 0
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        status = Path(f"/proc/{proc.pid}/status")
        while proc.poll() is None:
            with contextlib.suppress(OSError):
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
            time.sleep(0.02)  # sampling another process's memory: nothing to await
    return proc.returncode, log.read_bytes(), peak


def peak_growth(
    azurite: Azurite, containers: tuple[ContainerClient, ContainerClient], url: str, tmp: Path
) -> tuple[bytes, int]:
    """``costs ingest`` of the small export, then of the big one (fresh stores): the big
    one's output and how much higher its peak RSS was (KiB)."""
    command = [sys.executable, "app.py", "costs", "ingest"]
    peaks, output = [], b""
    for index, container in enumerate(containers):
        env = cli_env(azurite, container.container_name, url, tmp)
        env["WARDEN_DATABASE_URL"] = url.replace("warden.db", f"warden{index}.db")
        code, output, peak = run_measured(command, env, tmp / f"ingest{index}.log")
        assert code == 0, output.decode()
        peaks.append(peak)
    return output, peaks[1] - peaks[0]


async def done_partitions(store: Store) -> dict[str, float]:
    """The partitions stored so far, with when each was stored."""
    blobs = cost_export_blobs
    stmt = select(blobs.c.name, blobs.c.updated_at).where(blobs.c.status == DONE)
    async with store.reading() as conn:
        return {str(r.name): float(r.updated_at) for r in (await conn.execute(stmt)).all()}


@pytest.mark.parametrize("file_format", ["Csv", "Parquet"])
async def test_cost_ingest_killed_mid_run_resumes_at_the_next_partition(
    azurite: Azurite,
    container: ContainerClient,
    database_url: str,
    tmp_path: Path,
    file_format: str,
) -> None:
    """``costs ingest`` SIGKILLed after a few partitions (CSV or Parquet) is resumed by
    ``--resume``: the partitions stored before the kill are kept as they were, every cost is
    counted once."""
    if file_format == "Csv":
        block = day_block(500, 4, 1)
        parts = [b"".join(big_partition(block, range(day, day + 1), 12)) for day in range(1, 21)]
        write_export(container, parts)
    else:
        parts = [big_parquet(500, 4, range(day, day + 1), 12) for day in range(1, 21)]
        write_export(container, parts, file_format="Parquet", compression="snappy")
    env = cli_env(azurite, container.container_name, database_url, tmp_path)
    command = [sys.executable, "app.py", "costs", "ingest"]
    store = Store.from_url(database_url)
    await store.upgrade()
    try:
        proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child process, not a call
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            for _ in range(3000):
                if len(await done_partitions(store)) >= 3 or proc.poll() is not None:
                    break
                await asyncio.sleep(0.01)  # another process's progress: nothing to await
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=20)
        assert proc.returncode == -signal.SIGKILL
        before = await done_partitions(store)
        assert 3 <= len(before) < len(parts), "the run was not stopped half-way"
        resumed = await asyncio.to_thread(
            subprocess.run, [*command, "--resume"], cwd=ROOT, env=env, capture_output=True
        )
        assert resumed.returncode == 0, resumed.stdout.decode() + resumed.stderr.decode()
        assert f"resuming: {len(before)} partition(s) already stored".encode() in resumed.stdout
        after = await done_partitions(store)
        assert len(after) == len(parts)
        assert {name: after[name] for name in before} == before
        found = await cost_queries.resource_costs(store, [resource_id(0)], *NOVEMBER)
        assert found[resource_id(0).lower()].cost == pytest.approx(20 * 12 * 4 * 0.5)
    finally:
        await store.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_cost_ingest_one_gigabyte_export_keeps_memory_flat(
    azurite: Azurite, database_url: str, tmp_path: Path
) -> None:
    """Ingesting a 1 GB export (CSV, gzip) peaks under 100 MB above a tiny one's ingest."""
    block = day_block(2000, 2, 1)
    repeat = -(-(1 << 30) // (len(block) * 3 * 10))  # 10 partitions, 1 GiB of CSV in all
    assert 3 * repeat * len(block) * 10 >= 1 << 30
    big = azurite.container(f"big-{uuid.uuid4().hex[:8]}")
    parts = [b"".join(big_partition(block, range(3 * i + 1, 3 * i + 4), repeat)) for i in range(10)]
    write_export(big, parts)
    small = azurite.container(f"small-{uuid.uuid4().hex[:8]}")
    write_export(small, [b"".join(big_partition(block, range(1, 2), 1))])
    output, growth = await asyncio.to_thread(
        peak_growth, azurite, (small, big), database_url, tmp_path
    )
    rows = 10 * 3 * repeat * block.count("\n")
    assert f"({rows:,} rows)".encode() in output
    assert growth < 100 * 1024, f"peak RSS grew by {growth // 1024} MB"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_cost_ingest_large_parquet_export_keeps_memory_flat(
    azurite: Azurite, database_url: str, tmp_path: Path
) -> None:
    """Ingesting a Parquet export of about 200 MB (24 million rows, incompressible costs)
    peaks under 100 MB above a tiny one's ingest: row groups are read through ranged
    downloads, a batch at a time, never the whole file."""
    parts = [
        big_parquet(2000, 2, range(3 * i + 1, 3 * i + 4), 200, random_costs=True) for i in range(10)
    ]
    assert sum(len(part) for part in parts) >= 190 << 20
    big = azurite.container(f"big-{uuid.uuid4().hex[:8]}")
    write_export(big, parts, file_format="Parquet", compression="snappy")
    del parts
    small = azurite.container(f"small-{uuid.uuid4().hex[:8]}")
    tiny = big_parquet(2000, 2, range(1, 2), 1, random_costs=True)
    write_export(small, [tiny], file_format="Parquet", compression="snappy")
    output, growth = await asyncio.to_thread(
        peak_growth, azurite, (small, big), database_url, tmp_path
    )
    assert f"({10 * 3 * 200 * 4000:,} rows)".encode() in output
    assert growth < 100 * 1024, f"peak RSS grew by {growth // 1024} MB"
