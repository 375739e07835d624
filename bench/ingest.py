"""Signed-webhook ingest: Warden (durable) against a bare aiohttp handler.

Prints requests per second of each, measured one after the other in one run on this machine,
and their ratio (goal ≥ 0.5 on SQLite, ≥ 0.2 on PostgreSQL when the machine has one). In
full mode that is three rounds of bare, SQLite and PostgreSQL, each ratio taken against the
bare run just before it, medians printed: this machine's speed drifts within minutes. Then
the webhook-to-card latency at a steady 50 incidents/s against the sandbox connector (goal:
p95 under 1 s). ``--quick`` runs a short pass (one round) for CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import aiohttp
import asyncpg

from bench.load import LoadResult, build_request, run_load
from core.signing import sign
from sandbox.connector import ConnectorSandbox, run_connector_sandbox
from sandbox.sentinel_samples import sample_incident
from tests.support import install_activity, message_activity

ROOT = Path(__file__).resolve().parent.parent
WEBHOOK = "/api/webhooks/sentinel"
TITLE = re.compile(r"bench-\d{6}")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SECRET = "whsec_YmVuY2htYXJrLXNlY3JldC1iZW5jaG1hcmstc2VjcmV0"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serve(kind: str, var_dir: Path, database_url: str | None = None) -> AsyncIterator[str]:
    """Run a bench server in a subprocess; yield its base URL once it answers."""
    async with serve_process(kind, var_dir, database_url) as (base, _pid):
        yield base


@asynccontextmanager
async def serve_process(
    kind: str, var_dir: Path, database_url: str | None = None
) -> AsyncIterator[tuple[str, int]]:
    """Run a bench server in a subprocess; yield its base URL and pid once it answers."""
    port = _free_port()
    env = {
        **os.environ,
        "WARDEN_VAR_DIR": str(var_dir),
        "WARDEN_SENTINEL_WEBHOOK_SECRETS": SECRET,
        "WARDEN_PACING__ENABLED": "false",  # the sandbox connector is not Teams
    }
    if database_url is not None:
        env["WARDEN_DATABASE_URL"] = database_url
    command = [sys.executable, "-m", "bench.servers", kind, "--port", str(port)]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        command = ["taskset", "-c", "0", *command]  # the server gets one core, the load the other
    proc = subprocess.Popen(command, cwd=ROOT, env=env)  # noqa: ASYNC220 - long-lived child
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(1200):  # a minute: migrations are slow on a busy shared machine
                try:
                    async with session.get(base + "/healthz"):
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            else:
                raise RuntimeError(f"the {kind} server did not answer within a minute")
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _requests(base: str, count: int) -> list[bytes]:
    """``count`` distinct signed incident webhooks, as raw HTTP requests to ``base``."""
    port = int(base.rsplit(":", 1)[1])
    prepared = []
    for _ in range(count):
        body = json.dumps(sample_incident()).encode()
        headers = {**sign(SECRET, body), "Content-Type": "application/json"}
        prepared.append(build_request("127.0.0.1", port, "/api/webhooks/sentinel", body, headers))
    return prepared


async def throughput(base: str, seconds: float, connections: int) -> LoadResult:
    """Signed webhooks a server acknowledges per second over ``seconds`` (distinct ids)."""
    requests = _requests(base, int(seconds * 4000))
    port = int(base.rsplit(":", 1)[1])
    return await run_load("127.0.0.1", port, requests, connections=connections, seconds=seconds)


async def _subscribe(base: str, connector: ConnectorSandbox) -> None:
    conversation = "19:bench@thread.tacv2"
    async with aiohttp.ClientSession() as session:
        for activity in (
            install_activity(connector.url, conversation),
            message_activity(connector.url, conversation, "subscribe incidents"),
        ):
            async with session.post(base + "/api/messages", json=activity) as response:
                await response.read()


async def card_latency(
    base: str, connector: ConnectorSandbox, rate: int, seconds: float
) -> list[float]:
    """Seconds from each signed webhook to its card at the connector, at ``rate`` per second."""
    await _subscribe(base, connector)
    before = len(connector.posts())
    sent: dict[str, float] = {}
    incidents = [sample_incident(title=f"bench-{i:06d}") for i in range(int(rate * seconds))]
    async with aiohttp.ClientSession() as session:
        start = time.perf_counter()
        tasks = []
        for i, resource in enumerate(incidents):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            body = json.dumps(resource).encode()
            headers = {**sign(SECRET, body), "content-type": "application/json"}
            sent[resource["properties"]["title"]] = time.time()
            tasks.append(
                asyncio.create_task(session.post(base + WEBHOOK, data=body, headers=headers))
            )
        for response in await asyncio.gather(*tasks):
            response.release()
        await connector.wait_for(lambda c: len(c.posts()) >= before + len(incidents), timeout=120)
    latencies = []
    for record in connector.posts()[before:]:
        match = TITLE.search(json.dumps(record.body))
        if match and match.group(0) in sent:
            latencies.append(record.time - sent[match.group(0)])
    return latencies


@asynccontextmanager
async def fresh_postgres() -> AsyncIterator[str | None]:
    """A new, empty PostgreSQL database on this machine's server (None if there is none)."""
    name = f"warden_bench_{os.getpid()}"
    try:
        admin = await asyncpg.connect(PG_ADMIN, timeout=5)
    except (OSError, asyncpg.PostgresError):
        yield None
        return
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


async def main() -> None:
    """Run the ingest benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (CI)")
    args = parser.parse_args()
    seconds, rounds = (2.0, 1) if args.quick else (6.0, 3)
    bare: list[LoadResult] = []
    sqlite: list[LoadResult] = []
    postgres: list[LoadResult] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with AsyncExitStack() as stack:
            bare_base = await stack.enter_async_context(serve("bare", Path(tmp) / "bare"))
            sqlite_base = await stack.enter_async_context(serve("warden", Path(tmp) / "warden"))
            database_url = await stack.enter_async_context(fresh_postgres())
            pg_base = None
            if database_url is not None:
                pg_base = await stack.enter_async_context(
                    serve("warden", Path(tmp) / "pg", database_url)
                )
            for _ in range(rounds):  # side by side: the machine's speed drifts within minutes
                bare.append(await throughput(bare_base, seconds, 32))
                sqlite.append(await throughput(sqlite_base, seconds, 32))
                if pg_base is not None:
                    postgres.append(await throughput(pg_base, seconds, 32))
        async with (
            run_connector_sandbox() as connector,
            serve("warden", Path(tmp) / "latency") as base,
        ):
            latencies = await card_latency(base, connector, 50, 2.0 if args.quick else 10.0)
    bare_rate = statistics.median(r.rate for r in bare)
    print(f"Rates and ratios: medians of {rounds} round(s), each bare, SQLite, PostgreSQL.")
    print("| path | bare aiohttp | Warden | ratio | goal |")
    print("|---|---:|---:|---:|---|")
    print(
        f"| signed webhook → 202, durable on SQLite | {bare_rate:,.0f} req/s "
        f"| {statistics.median(r.rate for r in sqlite):,.0f} req/s "
        f"| {_ratio(sqlite, bare):.2f} | ≥ 0.5 |"
    )
    if not postgres:
        print("| signed webhook → 202, durable on PostgreSQL | | no PostgreSQL here | | ≥ 0.2 |")
    else:
        print(
            f"| signed webhook → 202, durable on PostgreSQL | {bare_rate:,.0f} req/s "
            f"| {statistics.median(r.rate for r in postgres):,.0f} req/s "
            f"| {_ratio(postgres, bare):.2f} | ≥ 0.2 |"
        )
    p95 = _p95(latencies) * 1000
    print(f"| webhook → card at the connector, 50 incidents/s | | p95 {p95:,.0f} ms | | < 1 s |")


def _ratio(warden: list[LoadResult], bare: list[LoadResult]) -> float:
    """The median of each round's ratio (Warden to the bare run just before it)."""
    return statistics.median(w.rate / b.rate for w, b in zip(warden, bare, strict=True))


if __name__ == "__main__":
    asyncio.run(main())
