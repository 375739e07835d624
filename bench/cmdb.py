"""CMDB sync: CIs per second from the Resource Graph sandbox into the store, against a raw walk.

One run, one machine: the ARM and ServiceNow sandboxes serve from their own process (on CPU 0
when ``taskset`` exists); this process first walks every page with bare httpx (the ceiling:
read and parse, nothing stored), then runs Warden's sync into a fresh SQLite store, then
into the store and ServiceNow for one of the four subscriptions. Prints resources per second
of each (the token fetch counted on both sides), the sync/raw ratio (goal ≥ 0.5) and the
resident memory of this process at the start, after 10 % and after 100 % of the pages (goal:
flat). Full run: 100,000 resources; ``--quick``: 2,000; ``--no-servicenow`` skips that leg.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from azure.identity.aio import ClientSecretCredential

from bench.turns import pin_here_to_cpu1
from connectors.resourcegraph.client import PATH
from connectors.resourcegraph.cmdb_sync import CmdbRun
from core.crypto import PayloadCipher, generate_key
from core.settings import Settings
from core.settings.cmdb import DEFAULT_QUERY, CmdbSettings
from core.settings.servicenow import ServiceNowSettings
from core.store.store import Store
from wiring.cmdb import sync_now

ROOT = Path(__file__).resolve().parent.parent
ARM_SCOPE = "https://management.azure.com/.default"


async def serve(info_file: Path, count: int) -> None:
    """Serve both sandboxes with ``count`` resources until SIGTERM; write how to reach them."""
    from sandbox.arm import ArmSandbox, run_arm_sandbox
    from sandbox.servicenow import run_servicenow_sandbox

    arm = ArmSandbox(seed_examples=False)
    arm.resource_graph.seed(count, random_seed=1)
    arm.resource_graph.quota.limit = 1_000_000
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with run_arm_sandbox(sandbox=arm) as served, run_servicenow_sandbox() as snow:
        info = {
            "url": served.url,
            "ca": str(served.ca_path),
            "tenant": served.tenant_id,
            "client": served.client_id,
            "secret": served.client_secret,
            "snow": snow.url,
            "user": snow.username,
            "password": snow.password,
            "subscription": next(iter(arm.resource_graph.rows.values()))["subscriptionId"],
        }
        partial = info_file.with_suffix(".tmp")
        partial.write_text(json.dumps(info))
        partial.rename(info_file)
        await stop.wait()


@asynccontextmanager
async def serving(state: Path, count: int) -> AsyncIterator[dict[str, Any]]:
    """``python -m bench.cmdb serve`` in its own process; yields its connection details."""
    info_file = state / "info.json"
    command = [sys.executable, "-m", "bench.cmdb", "serve", "--info-file", str(info_file)]
    command += ["--count", str(count)]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        command = ["taskset", "-c", "0", *command]
    with (state / "sandbox.log").open("ab") as log:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)  # noqa: ASYNC220
    try:
        for _ in range(6000):
            if info_file.exists():
                break
            if proc.poll() is not None:
                raise RuntimeError((state / "sandbox.log").read_text()[-2000:])
            await asyncio.sleep(0.05)  # a process starting up: nothing to await but its file
        else:
            raise RuntimeError("the sandbox process did not start within 300 s")
        yield json.loads(info_file.read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def raw_walk(info: dict[str, Any]) -> tuple[int, float]:
    """Every page with bare httpx: (resources, seconds), the token fetch included (as it is
    in Warden's sync, which gets its token on its first page)."""
    started = time.perf_counter()
    async with ClientSecretCredential(
        info["tenant"],
        info["client"],
        info["secret"],
        authority=info["url"],
        connection_verify=info["ca"],
    ) as credential:
        token = (await credential.get_token(ARM_SCOPE)).token
    headers = {"Authorization": f"Bearer {token}"}
    read, skip = 0, None
    async with httpx.AsyncClient(verify=info["ca"], headers=headers, timeout=60) as http:
        while True:
            options: dict[str, Any] = {"$top": 1000, "resultFormat": "objectArray"}
            if skip:
                options["$skipToken"] = skip
            answer = await http.post(
                info["url"] + PATH,
                params={"api-version": "2022-10-01"},
                json={"query": DEFAULT_QUERY, "options": options},
            )
            body = answer.raise_for_status().json()
            read += len(body["data"])
            skip = body.get("$skipToken")
            if not skip:
                return read, time.perf_counter() - started


def rss_mib() -> float:
    """This process's resident memory in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def warden_sync(
    info: dict[str, Any], state: Path, *, servicenow: bool
) -> tuple[CmdbRun, float, list[float]]:
    """Warden's sync into a fresh store (and ServiceNow): the run, seconds, RSS samples."""
    key = generate_key()
    more: dict[str, Any] = {"cmdb": CmdbSettings()}
    if servicenow:
        more["servicenow"] = ServiceNowSettings(
            instance_url=info["snow"], username=info["user"], password=info["password"]
        )
        more["cmdb"] = CmdbSettings(servicenow_sync=True, subscriptions=[info["subscription"]])
    settings = Settings(
        arm_endpoint=info["url"],
        arm_ca_bundle=Path(info["ca"]),
        azure_tenant_id=info["tenant"],
        azure_client_id=info["client"],
        azure_client_secret=info["secret"],
        azure_authority_host=info["url"],
        **more,
    )
    name = "snow" if servicenow else "store"
    store = Store.from_url(f"sqlite+aiosqlite:///{state / name}.db", cipher=PayloadCipher([key]))
    await store.upgrade()
    samples: list[float] = []

    def sample(run: CmdbRun) -> None:
        samples.append(rss_mib())

    try:
        started = time.perf_counter()
        run = await sync_now(settings, store, progress=sample)
        return run, time.perf_counter() - started, samples
    finally:
        await store.close()


def main() -> None:
    """Run the benchmark (or, with ``serve``, the sandboxes it measures against)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", nargs="?", choices=["serve"], help="internal: serve sandboxes")
    parser.add_argument("--info-file", type=Path, help="internal: where ``serve`` writes")
    parser.add_argument("--count", type=int, default=100_000, help="resources to seed")
    parser.add_argument("--quick", action="store_true", help="a short run (CI): 2,000 resources")
    parser.add_argument(
        "--no-servicenow", action="store_true", help="skip the store + ServiceNow leg"
    )
    args = parser.parse_args()
    if args.mode == "serve":
        asyncio.run(serve(args.info_file, args.count))
        return
    pin_here_to_cpu1()
    count = 2_000 if args.quick else args.count
    with tempfile.TemporaryDirectory(prefix="warden-cmdb-") as tmp:

        async def go() -> None:
            async with serving(Path(tmp), count) as info:
                read, raw_seconds = await raw_walk(info)
                run, seconds, rss = await warden_sync(info, Path(tmp), servicenow=False)
                snow = None
                if not args.no_servicenow:
                    snow = await warden_sync(info, Path(tmp), servicenow=True)
            raw_rate, rate = read / raw_seconds, run.read / seconds
            print("| path | resources | per second | vs raw |\n|---|---|---|---|")
            print(f"| raw httpx page walk | {read:,} | {raw_rate:,.0f} | 1.00 |")
            print(f"| Warden sync → store | {run.read:,} | {rate:,.0f} | {rate / raw_rate:.2f} |")
            if snow is not None:
                snow_rate = snow[0].read / snow[1]
                print(
                    f"| Warden sync → store + ServiceNow (1 subscription) | {snow[0].read:,} "
                    f"| {snow_rate:,.0f} | {snow_rate / raw_rate:.2f} |"
                )
            tenth = rss[max(1, len(rss) // 10)] if len(rss) > 1 else rss[-1]
            flat = (
                f"{rss[0]:.0f} MiB at the start, {tenth:.0f} MiB after 10 % of the pages, "
                f"{rss[-1]:.0f} MiB at the end"
            )
            print(f"\nsync/raw = {rate / raw_rate:.2f} (goal ≥ 0.5); resident memory {flat}.")

        asyncio.run(go())


if __name__ == "__main__":
    main()
