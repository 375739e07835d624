"""SharePoint list-item creation: Warden's Graph paths against stock msgraph-sdk and raw httpx.

The ARM sandbox (token endpoint, TLS CA) and the Graph sandbox run in their own process
(``python -m bench.graph serve``) pinned to CPU 0; the clients run here, on CPU 1. Each
client creates the same items (2,000; ``--quick``: 200) in one list, after a short
warm-up, measured one after the other in one run:

- raw: one pooled ``httpx.AsyncClient`` POSTing pre-serialised JSON with a bearer token,
  16 at a time (the floor of a single-call client);
- stock: a plain ``GraphServiceClient`` (msgraph-core's default middleware over httpx),
  ``...items.post(ListItem(...))``, 16 at a time;
- Warden single: ``graph.sharepoint.create_item`` over Warden's client (resilient
  transport, ``graph.speedups`` applied), 16 at a time;
- Warden batch: ``graph.batch.batch_create_items`` (``$batch`` of 20, 4 batches in flight).

Stock runs before Warden's client is built: ``graph.speedups`` patches the SDK for the
whole process. Prints items per second, this process's CPU per item, the ratio of each
to raw (goal for Warden's bulk path: ≥ 0.5) and Warden/stock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from azure.identity.aio import ClientSecretCredential
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph.generated.models.field_value_set import FieldValueSet
from msgraph.generated.models.list_item import ListItem
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory  # type: ignore[import-untyped]

from bench.turns import pin_here_to_cpu1
from core.breaker import Breakers
from graph.batch import batch_create_items
from graph.client import GRAPH_SCOPE, graph_client, graph_http
from graph.sharepoint import ListRef, create_item

CONCURRENCY = 16
ROOT = Path(__file__).resolve().parents[1]

Create = Callable[[list[dict[str, Any]]], Awaitable[None]]
"""Create one item per row."""


@dataclass(frozen=True)
class Info:
    """What the serving process tells the clients."""

    graph_url: str
    ca_path: str
    authority: str
    tenant_id: str
    client_id: str
    secret: str
    site_id: str
    list_id: str


@dataclass(frozen=True)
class Result:
    """Items per second and this process's CPU seconds per item."""

    rate: float
    cpu_per_item: float


def rows(start: int, count: int) -> list[dict[str, Any]]:
    """Field values of ``count`` items."""
    return [
        {"RequestId": f"REQ-{n}", "Seq": n, "Owner": "bench"} for n in range(start, start + count)
    ]


async def concurrently(one: Callable[[Any], Awaitable[Any]], items: list[Any]) -> None:
    """``one`` over ``items``, ``CONCURRENCY`` at a time."""
    queue = iter(items)

    async def worker() -> None:
        for row in queue:
            await one(row)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


def raw_create(http: httpx.AsyncClient, info: Info) -> Create:
    """POST pre-serialised bodies."""
    url = f"sites/{info.site_id}/lists/{info.list_id}/items"
    headers = {"Content-Type": "application/json"}

    async def create(batch: list[dict[str, Any]]) -> None:
        bodies = [json.dumps({"fields": row}).encode() for row in batch]

        async def one(body: bytes) -> None:
            answer = await http.post(url, content=body, headers=headers)
            answer.raise_for_status()
            answer.json()

        await concurrently(one, bodies)

    return create


def sdk_create(graph: GraphServiceClient, info: Info) -> Create:
    """``GraphServiceClient...items.post(ListItem(...))`` (stock or Warden's client)."""

    async def create(batch: list[dict[str, Any]]) -> None:
        async def one(row: dict[str, Any]) -> None:
            builder = graph.sites.by_site_id(info.site_id).lists.by_list_id(info.list_id).items
            made = await builder.post(ListItem(fields=FieldValueSet(additional_data=row)))
            assert made is not None and made.id

        await concurrently(one, batch)

    return create


def warden_single(graph: GraphServiceClient, info: Info) -> Create:
    """``graph.sharepoint.create_item``."""
    ref = ListRef(info.site_id, info.list_id)

    async def create(batch: list[dict[str, Any]]) -> None:
        await concurrently(lambda row: create_item(graph, ref, row), batch)

    return create


def warden_batch(graph: GraphServiceClient, info: Info) -> Create:
    """``graph.batch.batch_create_items``."""
    ref = ListRef(info.site_id, info.list_id)

    async def create(batch: list[dict[str, Any]]) -> None:
        ids = await batch_create_items(graph, ref, batch)
        assert len(ids) == len(batch) and all(ids)

    return create


async def measure(create: Create, count: int, first: int) -> Result:
    """A warm-up of 50 items, then ``count`` items timed."""
    await create(rows(first, 50))
    cpu, started = time.process_time(), time.perf_counter()
    await create(rows(first + 50, count))
    seconds = time.perf_counter() - started
    return Result(count / seconds, (time.process_time() - cpu) / count)


def stock_client(credential: ClientSecretCredential, info: Info) -> GraphServiceClient:
    """A plain ``GraphServiceClient`` with msgraph-core's default middleware."""
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=info.ca_path, timeout=30.0)
    )
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=[GRAPH_SCOPE], allowed_hosts=["127.0.0.1"]
    )
    adapter = GraphRequestAdapter(auth, http)
    adapter.base_url = info.graph_url
    return GraphServiceClient(request_adapter=adapter)


async def run_all(info: Info, count: int) -> dict[str, Result]:
    """Every client, one after the other, against the serving process."""
    results: dict[str, Result] = {}
    async with ClientSecretCredential(
        info.tenant_id,
        info.client_id,
        info.secret,
        authority=info.authority,
        connection_verify=info.ca_path,
    ) as credential:
        token = (await credential.get_token(GRAPH_SCOPE)).token
        async with httpx.AsyncClient(
            base_url=info.graph_url + "/",
            verify=info.ca_path,
            headers={"Authorization": f"Bearer {token}"},
            limits=httpx.Limits(max_keepalive_connections=CONCURRENCY),
            timeout=30.0,
        ) as raw:
            results["raw"] = await measure(raw_create(raw, info), count, 0)
        stock = stock_client(credential, info)
        results["stock"] = await measure(sdk_create(stock, info), count, 100_000)
        context = ssl.create_default_context(cafile=info.ca_path)
        async with graph_http(Breakers(), verify=context) as http:
            warden = graph_client(credential, http, base_url=info.graph_url)
            results["warden"] = await measure(warden_single(warden, info), count, 200_000)
            results["batch"] = await measure(warden_batch(warden, info), count, 300_000)
    return results


@asynccontextmanager
async def serving(state: Path) -> AsyncIterator[Info]:
    """``python -m bench.graph serve`` on CPU 0; yields its connection details."""
    info_file = state / "info.json"
    command = [sys.executable, "-m", "bench.graph", "serve", "--info-file", str(info_file)]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        command = ["taskset", "-c", "0", *command]
    with (state / "sandbox.log").open("ab") as log:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)  # noqa: ASYNC220
    try:
        for _ in range(2400):
            if info_file.exists():
                break
            if proc.poll() is not None:
                raise RuntimeError((state / "sandbox.log").read_text()[-2000:])
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("the Graph sandbox process did not start within 120 s")
        yield Info(**json.loads(info_file.read_text()))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def serve(info_file: Path) -> None:
    """The ARM and Graph sandboxes with one list, until SIGTERM; details to ``info_file``."""
    from sandbox.arm import ArmSandbox, run_arm_sandbox
    from sandbox.arm_cli import stop_signal
    from sandbox.graph import run_graph_sandbox

    stop = stop_signal()
    async with (
        run_arm_sandbox(sandbox=ArmSandbox(seed_examples=False)) as arm,
        run_graph_sandbox(arm) as graph,
    ):
        site = graph.add_site("contoso.sharepoint.com", "sites/Bench")
        columns = [{"name": "RequestId", "text": {}}, {"name": "Owner", "text": {}}]
        columns.append({"name": "Seq", "number": {}})
        made = graph.sharepoint.add_list(site, {"displayName": "Bench", "columns": columns})
        app = arm.register_client("bench-graph", graph_roles=["Sites.ReadWrite.All"])
        info = Info(
            graph.graph_url,
            str(arm.ca_path),
            arm.authority,
            arm.tenant_id,
            app.client_id,
            app.secret,
            site.id,
            made.id,
        )
        partial = info_file.with_suffix(".tmp")
        partial.write_text(json.dumps(vars(info)))
        partial.replace(info_file)
        await stop.wait()


LABELS = {
    "raw": "raw `httpx.AsyncClient`, pre-serialised JSON (the floor)",
    "stock": "stock `GraphServiceClient` (default middleware)",
    "warden": "Warden `create_item` (one call per item, speedups)",
    "batch": "Warden `batch_create_items` (`$batch` of 20)",
}


def table(results: dict[str, Result]) -> list[str]:
    """The Markdown table: items/s, CPU per item, ratio to raw."""
    raw = results["raw"].rate
    lines = [
        f"| client ({CONCURRENCY} at a time) | items/s | client CPU ms/item | ratio to raw |",
        "|---|---:|---:|---:|",
    ]
    for name, result in results.items():
        lines.append(
            f"| {LABELS[name]} | {result.rate:,.0f} | {result.cpu_per_item * 1000:.2f} "
            f"| {result.rate / raw:.2f} |"
        )
    return lines


def main() -> None:
    """Run the benchmark (or, with ``serve``, the sandboxes it measures against)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", nargs="?", choices=["serve"], help="internal: serve sandboxes")
    parser.add_argument("--info-file", type=Path, help="internal: where ``serve`` writes")
    parser.add_argument("--quick", action="store_true", help="a short run (CI): 200 items")
    args = parser.parse_args()
    if args.mode == "serve":
        asyncio.run(serve(args.info_file))
        return
    pin_here_to_cpu1()
    count = 200 if args.quick else 2000
    with tempfile.TemporaryDirectory(prefix="warden-graph-") as tmp:

        async def go() -> dict[str, Result]:
            async with serving(Path(tmp)) as info:
                return await run_all(info, count)

        results = asyncio.run(go())
    print("\n".join(table(results)))
    stock, best = results["stock"].rate, results["batch"].rate
    print(
        f"\nWarden bulk ($batch)/raw = {best / results['raw'].rate:.2f} (goal ≥ 0.5); "
        f"Warden single/stock = {results['warden'].rate / stock:.1f}×; "
        f"Warden bulk/stock = {best / stock:.1f}×. {count:,} list items per client, the Graph "
        "sandbox in its own process on CPU 0 (it does the inner requests of a batch too)."
    )


if __name__ == "__main__":
    main()
