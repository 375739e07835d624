"""Inbound Teams turns at ``/api/messages``: Warden against stock botbuilder and a bare handler.

Each server runs in its own process pinned to CPU 0 (``taskset``); the load generator
(``bench.load``) runs here, on the other core, replaying pre-built requests over 32
keep-alive connections. Auth is on everywhere it can be: Warden runs in production mode with
an app id, a password and ``BOT_OPENID_METADATA_URL`` pointing at a local OpenID sandbox
(TLS); the stock bot has the same app id and metadata; every request carries a valid RS256
channel token. Replies go to a connector sandbox (its own process) with an outbound token
from a local Entra ID (the ARM sandbox's token endpoint, TLS), as in production.

Prints requests per second of each server, the ratios (goals: Warden/stock ≥ 10,
Warden/bare ≥ 0.08) and what each turn cost outbound. ``--quick`` runs a short pass (CI).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

import sandbox.arm_login
from bench.load import LoadResult, build_request, run_load, with_fresh_id
from bench.stock_bot import ENTRA_ENV
from sandbox.arm import ArmSandbox
from sandbox.arm_tls import TlsFiles, make_tls_files
from sandbox.openid import OpenIdSandbox, channel_claims, mint
from tests.support import ENCRYPTION_KEY, channel_id, invoke_activity, message_activity

ROOT = Path(__file__).resolve().parent.parent
APP_ID = "5d0c7a52-6c0e-4b8e-9f27-0b7e3f1c2a91"
PASSWORD = "bench~not-a-real-secret"
WEBHOOK_SECRET = "whsec_YmVuY2htYXJrLXNlY3JldC1iZW5jaG1hcmstc2VjcmV0"
BOT_FRAMEWORK_AUDIENCE = "https://api.botframework.com"
CONNECTIONS = 32
CONVERSATIONS = 32
POOL = 256

Builder = Callable[[str, str], dict[str, Any]]
TURNS: dict[str, tuple[str, Builder]] = {
    "help": (
        "`help` command → one reply via the connector",
        lambda url, conversation: message_activity(url, conversation, "help"),
    ),
    "invoke": (
        "`adaptiveCard/action` invoke → card in the response",
        lambda url, conversation: invoke_activity(url, conversation, "bench.nope", {"n": 1}),
    ),
}
"""The turns measured: a name, what it is, and the activity it sends."""

SERVERS: dict[str, tuple[str, ...]] = {
    "bare": ("help", "invoke"),
    "stock": ("help", "invoke"),
    "stock-silent": ("help",),
    "warden": ("help", "invoke"),
}
"""Each server (``bench.stock_bot`` kind) and the turns measured against it."""


@dataclass(frozen=True)
class Stage:
    """The local services the servers under test talk to, and a valid channel token."""

    connector_url: str
    metadata_url: str
    entra: ArmSandbox
    ca_path: Path
    token: str
    tmp: Path

    def env(self) -> dict[str, str]:
        """The environment of a server under test (production mode, local endpoints)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
        env.update(
            WARDEN_MODE="production",
            WARDEN_VAR_DIR=str(self.tmp / "warden"),
            WARDEN_SENTINEL_WEBHOOK_SECRETS=WEBHOOK_SECRET,
            WARDEN_ENCRYPTION_KEYS=ENCRYPTION_KEY,
            MICROSOFT_APP_ID=APP_ID,
            MICROSOFT_APP_PASSWORD=PASSWORD,
            BOT_OPENID_METADATA_URL=self.metadata_url,
            REQUESTS_CA_BUNDLE=str(self.ca_path),
            SSL_CERT_FILE=str(self.ca_path),
        )
        env[ENTRA_ENV] = self.entra.url
        return env


@dataclass
class Measured:
    """One server's figures on one turn, and the outbound calls the turns caused."""

    load: LoadResult
    replies: int = 0
    token_calls: int = 0
    discovery_calls: int = 0
    bench_cpu: float = 0.0
    notes: list[str] = field(default_factory=list)

    def per_turn(self, count: int) -> float:
        """``count`` divided by the turns served."""
        return count / self.load.ok if self.load.ok else 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pinned(cpu: int, command: list[str]) -> list[str]:
    """``command`` run on CPU ``cpu`` alone, when taskset and a second core exist."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu), *command]
    return command


def pin_here_to_cpu1() -> None:
    """Keep this process (the load generator, the clients) off CPU 0, the measured core."""
    if hasattr(os, "sched_setaffinity") and {0, 1} <= os.sched_getaffinity(0):
        os.sched_setaffinity(0, {1})


def _tail(log: Path, chars: int = 2000) -> str:
    """The end of a server's log."""
    return log.read_text(errors="replace")[-chars:]


async def _wait_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Return once ``url`` answers; raise with the log's tail if the process died."""
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(f"{url}: server exited ({proc.returncode}):\n{_tail(log)}")
            try:
                async with session.get(url) as response:
                    await response.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within 30 s")


@asynccontextmanager
async def process(
    command: list[str], cpu: int, health: str, log: Path, env: dict[str, str] | None = None
) -> AsyncIterator[int]:
    """Run ``command`` (``{port}`` filled in) pinned to ``cpu``; yield its port once up."""
    port = _free_port()
    argv = _pinned(cpu, [part.format(port=port) for part in command])
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: ASYNC220
    try:
        await _wait_up(f"http://127.0.0.1:{port}{health}", proc, log)
        yield port
    finally:
        proc.terminate()
        # Waited for without blocking the loop: a server shutting down may still be calling
        # a sandbox served here (``bench.invoke``'s ARM sandbox).
        for _ in range(200):
            if proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        else:
            proc.kill()
            proc.wait()


@asynccontextmanager
async def _tls_site(app: web.Application, tls: TlsFiles) -> AsyncIterator[str]:
    """Serve ``app`` over TLS on a free loopback port; yield its ``https://`` origin."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server_context()).start()
        yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def _entra() -> ArmSandbox:
    """The ARM sandbox's Entra ID as the Bot Framework's: tenant botframework.com, our app.

    Its token endpoint knows ARM and Graph audiences only; the Bot Framework's is added
    here, in this process (a bench-only change until the sandbox knows that audience).
    """
    resources = sandbox.arm_login._RESOURCES
    if BOT_FRAMEWORK_AUDIENCE not in resources:
        sandbox.arm_login._RESOURCES = (*resources, BOT_FRAMEWORK_AUDIENCE)  # type: ignore[assignment]
    return ArmSandbox(
        tenant_id="botframework.com",
        client_id=APP_ID,
        client_secret=PASSWORD,
        seed_examples=False,
    )


@asynccontextmanager
async def stage(tmp: Path) -> AsyncIterator[Stage]:
    """OpenID metadata and Entra ID here (TLS), the connector in its own process on CPU 1."""
    tls = make_tls_files(tmp / "tls")
    openid, entra = OpenIdSandbox(), _entra()
    entra.tls = tls
    connector = [sys.executable, "-m", "sandbox.connector", "--port", "{port}"]
    async with AsyncExitStack() as stack:
        openid.url = await stack.enter_async_context(_tls_site(openid.make_app(), tls))
        entra.url = await stack.enter_async_context(_tls_site(entra.make_app(), tls))
        port = await stack.enter_async_context(
            process([*connector, "--log-level", "WARNING"], 1, "/_sandbox/mode", tmp / "c.log")
        )
        url = f"http://127.0.0.1:{port}/"
        token = mint(channel_claims(APP_ID, url), openid.keys[0])
        yield Stage(url, openid.metadata_url, entra, tls.ca_path, token, tmp)


def turn_requests(turn: str, port: int, service_url: str, token: str) -> list[bytes]:
    """``POOL`` distinct activities of ``turn`` as raw authenticated POSTs to ``port``."""
    build = TURNS[turn][1]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    prepared = []
    for i in range(POOL):
        activity = build(service_url, channel_id(f"bench{i % CONVERSATIONS}"))
        body = with_fresh_id(json.dumps(activity), activity["id"]).encode()
        prepared.append(build_request("127.0.0.1", port, "/api/messages", body, headers))
    return prepared


async def _load(port: int, pool: list[bytes], seconds: float) -> LoadResult:
    """Replay ``pool`` in a loop for ``seconds`` (a stuck server fails after a minute more)."""
    requests = pool * (int(seconds * 40_000) // len(pool) + 1)
    async with asyncio.timeout(seconds + 60):
        return await run_load(
            "127.0.0.1", port, requests, connections=CONNECTIONS, seconds=seconds, fresh=True
        )


async def _connector_posts(base: str) -> int:
    """Successful posts and replies the connector logged since last asked (then forgets)."""
    async with aiohttp.ClientSession() as session:
        async with session.get(base + "_sandbox/requests") as response:
            entries = (await response.json())["requests"]
        async with session.delete(base + "_sandbox/requests") as response:
            await response.read()
    posts = ("SendToConversation", "ReplyToActivity")
    return sum(1 for e in entries if e["operation"] in posts and 200 <= (e["status"] or 0) < 300)


async def measure(turn: str, port: int, stage_: Stage, seconds: float) -> Measured:
    """Warm up, then load the server with ``turn`` for ``seconds``; count outbound calls."""
    pool = turn_requests(turn, port, stage_.connector_url, stage_.token)
    async with asyncio.timeout(120):  # two turns per connection: caches and keys loaded
        await run_load(
            "127.0.0.1",
            port,
            pool[: 2 * CONNECTIONS],
            connections=CONNECTIONS,
            seconds=60,
            fresh=True,
        )
    await _connector_posts(stage_.connector_url)
    stage_.entra.clear_requests()
    cpu = time.process_time()
    load = await _load(port, pool, seconds)
    measured = Measured(load, bench_cpu=(time.process_time() - cpu) / load.seconds)
    measured.replies = await _connector_posts(stage_.connector_url)
    measured.token_calls = len(stage_.entra.calls("Token"))
    measured.discovery_calls = len(stage_.entra.calls("OpenIdConfiguration"))
    return measured


async def run_all(seconds: float) -> dict[tuple[str, str], Measured]:
    """Every server on its turns, one server process at a time."""
    results: dict[tuple[str, str], Measured] = {}
    with tempfile.TemporaryDirectory(prefix="warden-turns-") as tmp:
        async with stage(Path(tmp)) as stage_:
            for kind, turns in SERVERS.items():
                log = Path(tmp) / f"{kind}.log"
                command = [sys.executable, "-m", "bench.stock_bot", kind, "--port", "{port}"]
                async with process(command, 0, "/healthz", log, stage_.env()) as port:
                    for turn in turns:
                        results[kind, turn] = await measure(turn, port, stage_, seconds)
                if any(results[kind, t].load.failed for t in turns):
                    results[kind, turns[0]].notes.append(f"{kind} log tail:\n{_tail(log)}")
    return results


def _rate(result: Measured | None) -> str:
    return f"{result.load.rate:,.0f}" if result is not None else "—"


def _ratio(numerator: Measured | None, denominator: Measured | None, goal: float) -> str:
    if numerator is None or denominator is None or not denominator.load.rate:
        return "—"
    value = numerator.load.rate / denominator.load.rate
    return f"{value:.3g} {'✓' if value >= goal else '✗'}"


def _p99(result: Measured | None) -> str:
    if result is None or not result.load.latencies:
        return "—"
    ordered = sorted(result.load.latencies)
    return f"{ordered[int(0.99 * (len(ordered) - 1))] * 1000:,.1f}"


def table(results: dict[tuple[str, str], Measured]) -> list[str]:
    """The Markdown table: one row per turn, plus the stock do-nothing reference row."""
    lines = [
        "| path | bare req/s | stock req/s | Warden req/s | Warden/stock | Warden/bare "
        "| p99 ms (stock / Warden) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [(turn, TURNS[turn][0], "stock") for turn in TURNS]
    rows.append(("help", "message, stock handler does nothing (no reply; reference)", "silent"))
    for turn, label, stock_kind in rows:
        bare = results.get(("bare", turn))
        stock = results.get(("stock-silent" if stock_kind == "silent" else "stock", turn))
        warden = results.get(("warden", turn)) if stock_kind == "stock" else None
        lines.append(
            f"| {label} | {_rate(bare)} | {_rate(stock)} | {_rate(warden)} "
            f"| {_ratio(warden, stock, 10)} | {_ratio(warden, bare, 0.08)} "
            f"| {_p99(stock)} / {_p99(warden)} |"
        )
    return lines


def notes(results: dict[tuple[str, str], Measured]) -> list[str]:
    """Outbound calls per turn, failed answers, the load generator's own CPU."""
    lines = [
        "",
        "Outbound calls per turn (connector replies · Entra token POSTs · "
        "Entra openid-configuration GETs):",
    ]
    for (kind, turn), measured in results.items():
        ok = measured.load.ok
        lines.append(
            f"- {kind} `{turn}`: {measured.per_turn(measured.replies):.2f} · "
            f"{measured.per_turn(measured.token_calls):.2f} · "
            f"{measured.per_turn(measured.discovery_calls):.2f} "
            f"({ok:,} turns, {measured.load.failed:,} failed; load generator "
            f"{measured.bench_cpu:.0%} of a core)"
        )
    for measured in results.values():
        lines.extend(measured.notes)
    return lines


async def main() -> None:
    """Run the turns benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (CI)")
    args = parser.parse_args()
    pin_here_to_cpu1()
    results = await run_all(2.0 if args.quick else 8.0)
    print("\n".join(table(results)))
    print(
        "\nGoals (auth on, production mode): Warden/stock ≥ 10 and Warden/bare ≥ 0.08. "
        "Servers pinned to CPU 0, load from CPU 1, 32 keep-alive connections; every "
        "request carries a valid RS256 channel token; replies get an outbound token from a "
        "local Entra ID (TLS; botbuilder's MSAL pointed there by "
        "`bench.stock_bot.use_local_entra` in both servers)."
    )
    print("\n".join(notes(results)))


if __name__ == "__main__":
    asyncio.run(main())
