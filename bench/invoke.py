"""Triage clicks (``adaptiveCard/action`` invokes) on incident cards: Warden against a bare handler.

Warden runs as in ``bench.turns`` (production mode, pinned to CPU 0, every request carrying a
valid RS256 channel token, replies through the connector sandbox in its own process with a
token from a local Entra ID), with triage on: connected to the ARM sandbox (Sentinel, its
Entra ID and Graph, over TLS, in this process), responders checked in Graph
(``WARDEN_RESPONDER_GROUP_IDS``; the clicker is a member), Teams pacing off. One channel is
subscribed; the incidents are created in the ARM sandbox and sent by signed webhook, and
their cards are at the connector before the first click. The load generator (``bench.load``,
CPU 1) then clicks the cards' buttons, each click a full triage click (token, card posted in
this conversation, responder, card version, the action and its outbox job recorded, the
*applying…* card answered):

- ``incident.comment`` over 32 keep-alive connections for 8 s, spread over 64 incidents
  (``--quick``: 2 s, 32 incidents), each click with its own text;
- ``incident.severity`` High → Medium over 32 connections, once on each of 512 more cards
  (64): the change gives the incident a new version, so a second click on the same card
  would be refused as stale, a cheaper answer than a triage click;
- ``incident.comment`` one click at a time (one connection, for half the seconds): the
  answer time of a click when Warden is not saturated.

Meanwhile Warden's outbox writes each action to the ARM sandbox and redraws the cards; after
each run the bench waits up to two minutes (``--quick``: not at all) for it to catch up,
counting the comments Sentinel got (one per comment, one attribution per severity change).
The baseline, ``bench.stock_bot bare-card``, reads the same JSON bodies and answers a small
card. Prints invokes per second, p50 and p99 of each, the ratio Warden/bare and whether
Warden's p99 is within the goal of 200 ms, then how the outbox kept up. ``--quick`` runs a
short pass (CI).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench.load import LoadResult, build_request, run_load, with_fresh_id
from bench.turns import (
    CONNECTIONS,
    POOL,
    WEBHOOK_SECRET,
    Stage,
    _tail,
    pin_here_to_cpu1,
    process,
    stage,
)
from cards.verbs import CardVerb
from connectors.sentinel.mapping import incident_from_webhook
from core.store import outbox
from core.store.store import version_key
from sandbox.arm import ArmSandbox, run_arm_sandbox
from tests.support import (
    USER,
    channel_id,
    install_activity,
    invoke_activity,
    message_activity,
    signed,
)

RESPONDERS = "6f1c2e8a-41a4-4c57-9a55-0c1f4d1b2e77"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"
P99_GOAL_MS = 200.0
VERBS = (CardVerb.COMMENT, CardVerb.SEVERITY)


@dataclass(frozen=True)
class Target:
    """An incident whose card is in the channel: its ARM name, key and card version."""

    name: str
    key: str
    version: str


@dataclass(frozen=True)
class Desk:
    """The subscribed channel, the incidents to click, and the webhooks announcing them."""

    conversation: str
    comment: list[Target]
    severity: list[Target]
    webhooks: list[dict[str, Any]] = field(repr=False)


@dataclass(frozen=True)
class Run:
    """One measured run: a verb clicked over some connections."""

    name: str
    verb: CardVerb
    connections: int
    label: str


RUNS = (
    Run("comment", CardVerb.COMMENT, CONNECTIONS, "`incident.comment` over {comment} incidents"),
    Run(
        "severity",
        CardVerb.SEVERITY,
        CONNECTIONS,
        "`incident.severity` High → Medium, once on each of {severity} cards",
    ),
    Run("single", CardVerb.COMMENT, 1, "`incident.comment`, one click at a time"),
)
"""The runs, in the order the table shows them."""

WARDEN_ORDER = ("single", "severity", "comment")
"""The order Warden runs them in: the longest outbox backlog last."""


@dataclass
class Clicks:
    """One server's figures on one run; for Warden, how its outbox kept up."""

    load: LoadResult
    bench_cpu: float = 0.0
    applied_by_end: int = 0
    catch_up: float | None = None
    backlog: int = 0

    def quantile_ms(self, q: float) -> float:
        """The ``q`` quantile of the answer latencies in milliseconds (nearest rank)."""
        ordered = sorted(self.load.latencies)
        return ordered[int(q * (len(ordered) - 1))] * 1000 if ordered else 0.0


def sentinel_env(arm: ArmSandbox) -> dict[str, str]:
    """Warden's settings for the sandbox Sentinel, Entra ID and Graph, and responder groups."""
    return {
        "WARDEN_ARM_ENDPOINT": arm.url,
        "WARDEN_ARM_CA_BUNDLE": str(arm.ca_path),
        "WARDEN_GRAPH_ENDPOINT": arm.graph_url,
        "AZURE_TENANT_ID": arm.tenant_id,
        "AZURE_CLIENT_ID": arm.client_id,
        "AZURE_CLIENT_SECRET": arm.client_secret,
        "AZURE_AUTHORITY_HOST": arm.authority,
        "WARDEN_RESPONDER_GROUP_IDS": RESPONDERS,
        "WARDEN_PACING__ENABLED": "false",  # the sandbox connector is not Teams
        # the ARM sandbox serves from this process, beside the load: reading the deployments
        # of the 576 seeded incidents would slow the load, not Warden's clicks
        "WARDEN_DEPLOYMENTS__ENABLED": "false",
    }


def new_desk(arm: ArmSandbox, comment: int, severity: int) -> Desk:
    """``comment + severity`` new High incidents in the ARM sandbox; the clicker a responder."""
    arm.set_member_groups(str(USER["aadObjectId"]), [RESPONDERS])
    webhooks, targets = [], []
    for i in range(comment + severity):
        resource = arm.create_incident({"title": f"bench triage {i}", "severity": "High"})
        version = version_key(incident_from_webhook(resource))
        targets.append(Target(str(resource["name"]), str(resource["id"]).lower(), version))
        webhooks.append(resource)
    return Desk(channel_id("bench-triage"), targets[:comment], targets[comment:], webhooks)


async def _post_activity(
    session: aiohttp.ClientSession, base: str, token: str, activity: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with session.post(base + "/api/messages", json=activity, headers=headers) as response:
        if response.status >= 300:
            raise RuntimeError(f"{activity['type']}: {response.status} {await response.text()}")


async def _conversation_text(
    session: aiohttp.ClientSession, connector_url: str, conversation: str
) -> str:
    """Every activity the connector holds in ``conversation`` (cards as updated), as JSON."""
    url = f"{connector_url}_sandbox/conversations/{quote(conversation, safe='')}/activities"
    async with session.get(url) as response:
        return json.dumps((await response.json())["activities"])


async def seed(base: str, stage_: Stage, desk: Desk) -> None:
    """Subscribe the channel, send every incident's webhook, wait for all their cards."""
    url = stage_.connector_url
    async with aiohttp.ClientSession() as session:
        for activity in (
            install_activity(url, desk.conversation),
            message_activity(url, desk.conversation, "subscribe incidents"),
        ):
            await _post_activity(session, base, stage_.token, activity)
        limit = asyncio.Semaphore(16)

        async def webhook(resource: dict[str, Any]) -> None:
            body, headers = signed(resource, secret=WEBHOOK_SECRET)
            async with (
                limit,
                session.post(base + "/api/webhooks/sentinel", data=body, headers=headers) as answer,
            ):
                if answer.status != 202:
                    raise RuntimeError(f"webhook: {answer.status} {await answer.text()}")

        await asyncio.gather(*(webhook(resource) for resource in desk.webhooks))
        targets = desk.comment + desk.severity
        deadline = time.monotonic() + 120
        while True:  # each card's triage buttons carry its version in their data
            text = await _conversation_text(session, url, desk.conversation)
            missing = [t for t in targets if json.dumps(t.version) not in text]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(missing)} of {len(targets)} cards never posted")
            await asyncio.sleep(0.2)


def click(service_url: str, desk: Desk, verb: CardVerb, target: Target, n: int) -> bytes:
    """The JSON body of click number ``n`` of ``verb`` on ``target``'s card."""
    data: dict[str, Any] = {"incident": target.key, "version": target.version}
    if verb is CardVerb.COMMENT:
        data["comment"] = f"Bench note {n}: checked the sign-in logs"
    else:
        data["severity"] = "Medium"
    activity = invoke_activity(service_url, desk.conversation, verb.value, data)
    return with_fresh_id(json.dumps(activity), activity["id"]).encode()


def click_requests(port: int, stage_: Stage, desk: Desk, verb: CardVerb) -> list[bytes]:
    """Comments: ``POOL`` distinct clicks over the comment incidents; severity: one a card."""
    if verb is CardVerb.COMMENT:
        bodies = [
            click(stage_.connector_url, desk, verb, desk.comment[n % len(desk.comment)], n)
            for n in range(POOL)
        ]
    else:
        bodies = [click(stage_.connector_url, desk, verb, t, 0) for t in desk.severity]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {stage_.token}"}
    return [build_request("127.0.0.1", port, "/api/messages", b, headers) for b in bodies]


async def clicks_of(
    port: int, pools: dict[CardVerb, list[bytes]], run: Run, seconds: float
) -> Clicks:
    """``run``'s clicks: comments replayed for ``seconds``, each severity click once."""
    pool = pools[run.verb]
    if run.connections == 1:
        seconds /= 2  # unloaded answer times need fewer clicks
    requests = pool * (int(seconds * 20_000) // len(pool) + 1)
    if run.verb is CardVerb.SEVERITY:
        requests, seconds = pool, 600.0  # until every card was clicked once
    cpu = time.process_time()
    async with asyncio.timeout(seconds + 60):  # a stuck server fails after a minute more
        load = await run_load(
            "127.0.0.1", port, requests, connections=run.connections, seconds=seconds, fresh=True
        )
    return Clicks(load, bench_cpu=(time.process_time() - cpu) / max(load.seconds, 1e-9))


async def warm_up(port: int, pool: list[bytes]) -> None:
    """Two clicks per connection: connections opened, caches and keys loaded."""
    async with asyncio.timeout(120):
        await run_load(
            "127.0.0.1",
            port,
            pool[: 2 * CONNECTIONS],
            connections=CONNECTIONS,
            seconds=60,
            fresh=True,
        )


async def check_one_click(base: str, stage_: Stage, desk: Desk) -> None:
    """One comment click, read in full: Warden must answer the *applying…* card."""
    body = click(stage_.connector_url, desk, CardVerb.COMMENT, desk.comment[0], -1)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {stage_.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(base + "/api/messages", data=body, headers=headers) as response,
    ):
        answer = await response.text()
    if response.status != 200 or CARD_TYPE not in answer or "Applying" not in answer:
        raise RuntimeError(f"the click was not taken ({response.status}): {answer[:2000]}")


def comments(arm: ArmSandbox, targets: list[Target]) -> int:
    """The comments Sentinel holds on ``targets`` (one per applied comment or severity)."""
    return sum(len(arm.comments(t.name)) for t in targets)


async def backlog(base: str) -> int:
    """Warden's unfinished outbox jobs, from its ``/metrics``."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(base + "/metrics") as response,
    ):
        text = await response.text()
    return sum(
        int(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "warden_outbox_depth" and sample.labels["status"] in outbox.UNFINISHED
    )


async def catch_up(
    arm: ArmSandbox, base: str, targets: list[Target], expected: int, wait: float
) -> tuple[float | None, int]:
    """Wait up to ``wait`` s for ``expected`` comments: (seconds it took or None, backlog)."""
    start = time.perf_counter()
    while comments(arm, targets) < expected:
        if time.perf_counter() - start > wait:
            return None, await backlog(base)
        await asyncio.sleep(0.1)
    return time.perf_counter() - start, await backlog(base)


async def measure_warden(
    port: int, arm: ArmSandbox, stage_: Stage, desk: Desk, seconds: float, wait: float
) -> dict[str, Clicks]:
    """A checked click and a warm-up, then each run; after each, the outbox given time."""
    base = f"http://127.0.0.1:{port}"
    await check_one_click(base, stage_, desk)
    pools = {verb: click_requests(port, stage_, desk, verb) for verb in VERBS}
    await warm_up(port, pools[CardVerb.COMMENT])
    expected = {CardVerb.COMMENT: 1 + 2 * CONNECTIONS, CardVerb.SEVERITY: 0}
    await catch_up(arm, base, desk.comment, expected[CardVerb.COMMENT], wait)
    runs = {run.name: run for run in RUNS}
    results: dict[str, Clicks] = {}
    for name in WARDEN_ORDER:
        run = runs[name]
        targets = desk.comment if run.verb is CardVerb.COMMENT else desk.severity
        before = comments(arm, targets)
        measured = await clicks_of(port, pools, run, seconds)
        measured.applied_by_end = comments(arm, targets) - before
        expected[run.verb] += measured.load.ok
        measured.catch_up, measured.backlog = await catch_up(
            arm, base, targets, expected[run.verb], wait
        )
        results[name] = measured
    return results


async def run_all(
    seconds: float, comment_incidents: int, severity_clicks: int, wait: float
) -> dict[tuple[str, str], Clicks]:
    """The bare handler, then Warden, on the same clicks."""
    results: dict[tuple[str, str], Clicks] = {}
    with tempfile.TemporaryDirectory(prefix="warden-invoke-") as tmp:
        async with (
            stage(Path(tmp)) as stage_,
            run_arm_sandbox(tls_dir=Path(tmp) / "arm-tls") as arm,
        ):
            desk = new_desk(arm, comment_incidents, severity_clicks)
            command = [sys.executable, "-m", "bench.stock_bot", "bare-card", "--port", "{port}"]
            async with process(
                command, 0, "/healthz", Path(tmp) / "bare.log", stage_.env()
            ) as port:
                pools = {verb: click_requests(port, stage_, desk, verb) for verb in VERBS}
                await warm_up(port, pools[CardVerb.COMMENT])
                for run in RUNS:
                    results["bare", run.name] = await clicks_of(port, pools, run, seconds)
            command = [sys.executable, "-m", "bench.stock_bot", "warden", "--port", "{port}"]
            log = Path(tmp) / "warden.log"
            env = {**stage_.env(), **sentinel_env(arm)}
            try:
                async with process(command, 0, "/healthz", log, env) as port:
                    await seed(f"http://127.0.0.1:{port}", stage_, desk)
                    measured = await measure_warden(port, arm, stage_, desk, seconds, wait)
            except Exception:
                print(f"Warden log tail:\n{_tail(log)}", file=sys.stderr)
                raise
            for name, clicks in measured.items():
                results["warden", name] = clicks
            if any(clicks.load.failed for clicks in measured.values()):
                print(f"Warden log tail:\n{_tail(log)}", file=sys.stderr)
    return results


def table(results: dict[tuple[str, str], Clicks], sizes: dict[str, int]) -> list[str]:
    """The Markdown table: one row per run, bare and Warden side by side."""
    lines = [
        "| click | connections | bare invokes/s | Warden invokes/s | Warden/bare "
        "| p50 ms (bare / Warden) | p99 ms (bare / Warden) | Warden p99 ≤ 200 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in RUNS:
        bare, warden = results["bare", run.name], results["warden", run.name]
        ratio = warden.load.rate / bare.load.rate if bare.load.rate else 0.0
        p99 = warden.quantile_ms(0.99)
        lines.append(
            f"| {run.label.format(**sizes)} | {run.connections} | {bare.load.rate:,.0f} "
            f"| {warden.load.rate:,.0f} | {ratio:.3g} "
            f"| {bare.quantile_ms(0.5):,.1f} / {warden.quantile_ms(0.5):,.1f} "
            f"| {bare.quantile_ms(0.99):,.1f} / {p99:,.1f} "
            f"| {'yes ✓' if p99 <= P99_GOAL_MS else 'no ✗'} |"
        )
    return lines


def notes(results: dict[tuple[str, str], Clicks]) -> list[str]:
    """Clicks answered and failed, the load generator's CPU, how Warden's outbox kept up."""
    lines = [""]
    for (kind, name), clicks in results.items():
        load = clicks.load
        lines.append(
            f"- {kind} `{name}`: {load.ok:,} clicks answered, {load.failed:,} failed, in "
            f"{load.seconds:.1f} s (this process: {clicks.bench_cpu:.0%} of a core)"
        )
    lines += ["", "Warden's outbox (writes to the ARM sandbox, card redraws at the connector):"]
    for name in WARDEN_ORDER:
        clicks = results["warden", name]
        load = clicks.load
        caught = (
            f"all applied {clicks.catch_up:.1f} s after the load"
            if clicks.catch_up is not None
            else f"not all applied when the bench stopped waiting ({clicks.backlog:,} jobs left)"
        )
        lines.append(
            f"- `{name}`: {load.ok:,} clicks; Sentinel got {clicks.applied_by_end:,} writes "
            f"during the load ({clicks.applied_by_end / load.seconds:,.0f}/s); {caught}"
        )
    return lines


async def main() -> None:
    """Run the invoke benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (CI)")
    args = parser.parse_args()
    pin_here_to_cpu1()
    sizes = {"comment": 32, "severity": 64} if args.quick else {"comment": 64, "severity": 512}
    seconds, wait = (2.0, 0.0) if args.quick else (8.0, 120.0)
    results = await run_all(seconds, sizes["comment"], sizes["severity"], wait)
    print("\n".join(table(results, sizes)))
    print(
        f"\nGoal: Warden's p99 answer ≤ {P99_GOAL_MS:.0f} ms. Servers pinned to CPU 0, load "
        "from CPU 1; auth on (production mode, valid RS256 channel tokens); Warden connected "
        "to the ARM sandbox (TLS), responders checked in Graph, Teams pacing off. Every "
        "Warden click is a full triage click: the action recorded with its outbox job, the "
        "*applying…* card answered."
    )
    print("\n".join(notes(results)))


if __name__ == "__main__":
    asyncio.run(main())
