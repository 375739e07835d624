"""Streamed evidence upload: Warden's ``EvidenceFiler`` against a raw httpx session loop.

Both upload the same generated file (50 MB; ``--quick``: 10 MB) to the Graph sandbox
through an upload session with the same fragments (16 x 320 KiB), from the same stream of
64 KiB pieces:

- raw: one ``httpx.AsyncClient`` POSTs ``createUploadSession`` with a bearer token, then
  PUTs each fragment (``Content-Range``) to the upload URL from a second, tokenless client:
  no hashing, no checks, no retries (the floor);
- Warden: ``EvidenceFiler.file`` over msgraph-sdk and the resilient client (SHA-256 on the
  way, executable and size checks, per-fragment resume).

The ARM and Graph sandboxes run in this process, so the server's work is in both figures.
Each client runs ``rounds`` timed uploads (best taken), then one under ``tracemalloc`` for
the peak of Python allocations (the sandbox's included). Prints MB/s, peak MiB, and the
ratio Warden/raw (goal ≥ 0.8); then how far the process's resident set rises while Warden files
one 200 MB file (``--quick``: 20 MB; goal < 50 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx
from azure.identity.aio import ClientSecretCredential

from connectors.ssrf import SsrfPolicy, stream
from core.breaker import Breakers
from graph.client import GRAPH_SCOPE, graph_client, graph_http
from graph.evidence_files import EvidenceFiler, EvidencePath, EvidenceSource, UploadLimits
from sandbox.arm import ArmSandbox, run_arm_sandbox
from sandbox.graph import GraphSandbox, run_graph_sandbox

MB = 1000 * 1000
PIECE = 64 * 1024
LIMITS = UploadLimits(max_bytes=200 * MB)
BLOCK = os.urandom(1024 * 1024)

Upload = Callable[[int, int], Awaitable[None]]
"""``(size, round) -> None``: upload one generated file of ``size`` bytes."""


def pieces(size: int) -> AsyncIterator[bytes]:
    """A stream of ``size`` bytes in 64 KiB pieces (slices of one random block)."""

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, size, PIECE):
            offset = start % len(BLOCK)
            yield BLOCK[offset : offset + min(PIECE, size - start)]

    return chunks()


async def raw_upload(
    graph_http_client: httpx.AsyncClient, upload_http: httpx.AsyncClient, drive_id: str
) -> Upload:
    """The raw httpx session loop."""

    async def upload(size: int, number: int) -> None:
        url = f"drives/{drive_id}/root:/bench/raw-{number}.bin:/createUploadSession"
        created = await graph_http_client.post(url, json={})
        created.raise_for_status()
        upload_url = created.json()["uploadUrl"]
        source, offset = pieces(size), 0
        buffer: list[bytes] = []
        held = 0
        async for piece in source:
            buffer.append(piece)
            held += len(piece)
            if held == LIMITS.fragment or offset + held == size:
                data = b"".join(buffer)
                buffer, held = [], 0
                headers = {"Content-Range": f"bytes {offset}-{offset + len(data) - 1}/{size}"}
                answer = await upload_http.put(upload_url, content=data, headers=headers)
                answer.raise_for_status()
                offset += len(data)

    return upload


def warden_upload(filer: EvidenceFiler) -> Upload:
    """Warden's streamed filing."""

    async def upload(size: int, number: int) -> None:
        path = EvidencePath("BENCH", "2026-Q4", "REQ-1", f"warden-{number}.bin")
        await filer.file(EvidenceSource(lambda: pieces(size), size), path)

    return upload


async def measure(upload: Upload, size: int, rounds: int, first: int) -> tuple[float, float]:
    """Best MB/s over ``rounds`` uploads, then the tracemalloc peak (MiB) of one more."""
    best = float("inf")
    for number in range(rounds):
        started = time.perf_counter()
        await upload(size, first + number)
        best = min(best, time.perf_counter() - started)
    tracemalloc.start()
    try:
        await upload(size, first + rounds)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return size / MB / best, peak / 1024 / 1024


def _rss_mib() -> float:
    """This process's resident set now (Linux ``/proc``), MiB."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def rss_growth(upload: Upload, size: int, number: int) -> float:
    """How far the resident set rises (MiB, sampled every 5 ms) while ``upload`` files one
    file of ``size`` bytes: what holding it in memory would show."""
    before = peak = _rss_mib()
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_mib())
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    try:
        await upload(size, number)
    finally:
        done.set()
        await sampler
    return max(peak, _rss_mib()) - before


async def run(size: int, rounds: int, state: Path, large: int) -> None:
    """Start the sandboxes, measure both clients, print the table."""
    async with (
        run_arm_sandbox(sandbox=ArmSandbox(seed_examples=False)) as arm,
        run_graph_sandbox(arm, state_dir=state) as graph,
    ):
        drive_id = _library(graph)
        app = arm.register_client("bench-evidence", graph_roles=["Sites.ReadWrite.All"])
        async with ClientSecretCredential(
            arm.tenant_id,
            app.client_id,
            app.secret,
            authority=arm.authority,
            connection_verify=str(arm.ca_path),
        ) as credential:
            token = (await credential.get_token(GRAPH_SCOPE)).token
            headers = {"Authorization": f"Bearer {token}"}
            context = arm.ssl_context()
            async with (
                httpx.AsyncClient(
                    base_url=graph.graph_url + "/", verify=context, headers=headers
                ) as tokened,
                httpx.AsyncClient(verify=context) as tokenless,
                graph_http(Breakers(), verify=context) as resilient,
            ):
                raw = await measure(await raw_upload(tokened, tokenless, drive_id), size, rounds, 0)
                policy = SsrfPolicy(
                    allowed_hosts=("127.0.0.1",), allow_private=True, allowed_ports=None
                )
                fetch = functools.partial(stream, policy=policy, ssl_context=context)
                client = graph_client(credential, resilient, base_url=graph.graph_url)
                filer = EvidenceFiler(client, resilient, drive_id, fetch=fetch, limits=LIMITS)
                warden = await measure(warden_upload(filer), size, rounds, 0)
                growth = await rss_growth(warden_upload(filer), large, rounds + 1)
    _print(size, raw, warden)
    mark = "✓" if growth < 50 else "✗"
    label = f"Warden filing one {large // MB} MB file: RSS growth"
    print(f"| {label} | {growth:,.1f} MiB {mark} | goal < 50 MB |")


def _library(graph: GraphSandbox) -> str:
    """A new document library on a new site; its drive id."""
    site = graph.add_site("contoso.sharepoint.com", "sites/Bench")
    body = {"displayName": "Bench Files", "list": {"template": "documentLibrary"}}
    library = graph.sharepoint.add_list(site, body)
    assert library.drive_id is not None
    return library.drive_id


def _print(size: int, raw: tuple[float, float], warden: tuple[float, float]) -> None:
    """The Markdown table of both clients and the ratios."""
    print(
        f"| {size // MB} MB upload session, {LIMITS.fragment // 1024} KiB fragments "
        "| MB/s | peak MiB (tracemalloc) |"
    )
    print("|---|---:|---:|")
    print(f"| raw httpx loop | {raw[0]:,.1f} | {raw[1]:,.1f} |")
    print(f"| Warden EvidenceFiler (SHA-256, checks) | {warden[0]:,.1f} | {warden[1]:,.1f} |")
    print(f"| ratio Warden/raw | {warden[0] / raw[0]:.2f} | {warden[1] / raw[1]:.2f} |")


def main() -> None:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (CI): 10 MB")
    args = parser.parse_args()
    size, rounds, large = (10 * MB, 3, 20 * MB) if args.quick else (50 * MB, 5, 200 * MB)
    with TemporaryDirectory() as tmp:
        asyncio.run(run(size, rounds, Path(tmp), large))


if __name__ == "__main__":
    main()
