"""Fan-out under Teams' rate limits: completion time against the least the limits allow.

Warden runs in its own process pinned to CPU 0, in sandbox mode with its default settings
(Teams pacing on); the connector sandbox runs here, on CPU 1, enforcing Teams' limits (it
answers 429 with Retry-After when a send would exceed them). Each scenario gets a fresh Warden:

- one incident to N subscribed channels (1,000; ``--quick``: 200), bounded by the per-bot
  limit (``core.pacing.TEAMS_BOT_LIMITS``);
- M incidents to one channel (1,000; ``--quick``: 70, one past the 30-second window), bounded
  by the per-conversation windows (``core.pacing.TEAMS_CONVERSATION_LIMITS``).

The clock runs from the (first) webhook's 202 to the last card the connector accepted. The
minimum is the time of the last send in the earliest schedule the windows allow, counting the
sends the conversation already had (the subscription's replies). Prints ratio = minimum /
actual (goal ≥ 0.8) and the 429s (goal 0); then ``bench.memory``'s soak of 100,000 webhook
events (``--quick``: 5,000) with Warden's RSS before and after (goal: growth < 10 %). The soak
runs alongside the second scenario (its own Warden and connector), whose pace is set by
thirty-second windows, not by the CPU; run one after the other they would take twice as long.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench import memory
from bench.ingest import SECRET, WEBHOOK
from bench.turns import pin_here_to_cpu1, process
from core.pacing import TEAMS_BOT_LIMITS, TEAMS_CONVERSATION_LIMITS, Window
from core.signing import sign
from sandbox.connector import ConnectorSandbox, run_connector_sandbox
from sandbox.sentinel_samples import sample_incident

RATIO_GOAL = 0.8
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
BOT = {"id": "28:warden-bot", "name": "Warden"}
USER = {"id": "29:bench", "name": "Bench User", "aadObjectId": str(uuid.UUID(int=1))}
SUBSCRIBERS = 16
"""Subscriptions set up at once (Warden answers each with a card, limits off meanwhile)."""


@dataclass(frozen=True)
class Scenario:
    """One fan-out measured: the cards, the least time the limits allow, what Warden took."""

    label: str
    cards: int
    minimum: float
    actual: float
    throttled: int

    @property
    def ratio(self) -> float:
        """Minimum over actual: 1.0 is as fast as Teams allows."""
        return self.minimum / self.actual if self.actual > 0 else 0.0

    @property
    def met(self) -> bool:
        """The ratio reaches its goal and no send drew a 429."""
        return self.ratio >= RATIO_GOAL and self.throttled == 0


def earliest_last_send(count: int, windows: tuple[Window, ...], history: Iterable[float]) -> float:
    """When the last of ``count`` sends from time 0 can go at the earliest, in seconds.

    ``windows`` are (span, allowed) sliding windows; ``history`` the times (before 0) of sends
    already counted against them. Sends go greedily, each as soon as every window has room.
    """
    sent = sorted(history)
    start = len(sent)
    for _ in range(count):
        moment = 0.0
        for span, allowed in windows:
            if len(sent) >= allowed:
                moment = max(moment, sent[-allowed] + span)
        sent.append(moment)
    return sent[-1] if len(sent) > start else 0.0


def channel(index: int) -> str:
    """The id of bench channel ``index``."""
    return f"19:fanout{index:05d}@thread.tacv2"


def subscribe_activity(service_url: str, conversation: str) -> dict[str, Any]:
    """The channel message, @mentioning the bot, that subscribes ``conversation`` to incidents.

    Warden remembers a conversation from any message in it, so no installation event is needed.
    """
    message_id = str(uuid.uuid4().int)[:13]
    where = {"id": f"{conversation};messageid={message_id}", "tenantId": TENANT}
    mention = {"type": "mention", "mentioned": BOT, "text": "<at>Warden</at>"}
    return {
        "type": "message",
        "id": message_id,
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": USER,
        "recipient": BOT,
        "conversation": {**where, "isGroup": True, "conversationType": "channel"},
        "text": "<at>Warden</at> subscribe incidents",
        "textFormat": "plain",
        "entities": [mention],
        "channelData": {
            "teamsChannelId": conversation,
            "team": {"id": conversation, "name": "Security Operations"},
            "channel": {"id": conversation},
            "tenant": {"id": TENANT},
        },
    }


async def subscribe(session: aiohttp.ClientSession, base: str, url: str, count: int) -> None:
    """Subscribe ``count`` channels to incidents (Warden answers each with a card)."""
    gate = asyncio.Semaphore(SUBSCRIBERS)

    async def one(index: int) -> None:
        async with gate:
            activity = subscribe_activity(url, channel(index))
            async with session.post(base + "/api/messages", json=activity) as response:
                if response.status >= 300:
                    raise RuntimeError(f"subscription refused: {response.status}")

    await asyncio.gather(*(one(i) for i in range(count)))


async def webhook(session: aiohttp.ClientSession, base: str, title: str) -> float:
    """Send one signed incident webhook; return when its 202 arrived (``time.time()``)."""
    body = json.dumps(sample_incident(title=title)).encode()
    headers = {**sign(SECRET, body), "Content-Type": "application/json"}
    async with session.post(base + WEBHOOK, data=body, headers=headers) as response:
        if response.status != 202:
            raise RuntimeError(f"webhook answered {response.status}")
        return time.time()


@asynccontextmanager
async def warden(var_dir: Path) -> AsyncIterator[str]:
    """Warden (sandbox mode, default settings: pacing on) on CPU 0; yields its base URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    env.update(WARDEN_VAR_DIR=str(var_dir), WARDEN_SENTINEL_WEBHOOK_SECRETS=SECRET)
    command = [sys.executable, "-m", "bench.servers", "warden", "--port", "{port}"]
    async with process(command, 0, "/healthz", var_dir.with_suffix(".log"), env) as port:
        yield f"http://127.0.0.1:{port}"


async def _limits_on(connector: ConnectorSandbox) -> None:
    """Let the set-up's sends leave the per-bot window, then enforce Teams' limits anew."""
    await asyncio.sleep(TEAMS_BOT_LIMITS[-1][0] * 1.5)
    connector.clear_requests()
    connector.rate_limiter.reset()
    connector.rate_limit = True


async def _finish(connector: ConnectorSandbox, cards: int, within: float) -> tuple[float, int]:
    """Wait for ``cards`` accepted posts; return the last one's time and the 429s seen."""
    await connector.wait_for(lambda c: len(c.posts(successful=True)) >= cards or None, within)
    last = max(record.time for record in connector.posts(successful=True))
    return last, sum(1 for record in connector.requests if record.status == 429)


async def one_to_many(connector: ConnectorSandbox, tmp: Path, channels: int) -> Scenario:
    """One incident to ``channels`` subscribed channels."""
    connector.reset()
    connector.rate_limit = False
    async with warden(tmp / "one-to-many") as base, aiohttp.ClientSession() as session:
        await subscribe(session, base, connector.url, channels)
        await _limits_on(connector)
        minimum = earliest_last_send(channels, TEAMS_BOT_LIMITS, ())
        accepted = await webhook(session, base, "fanout one to many")
        last, throttled = await _finish(connector, channels, 3 * minimum + 60)
    label = f"one incident → {channels:,} channels (per bot)"
    return Scenario(label, channels, minimum, last - accepted, throttled)


async def many_to_one(connector: ConnectorSandbox, tmp: Path, incidents: int) -> Scenario:
    """``incidents`` incidents to one subscribed channel, sent back to back."""
    connector.reset()
    connector.rate_limit = False
    async with warden(tmp / "many-to-one") as base, aiohttp.ClientSession() as session:
        await subscribe(session, base, connector.url, 1)
        await connector.wait_for(lambda c: len(c.posts(successful=True)) >= 1 or None)
        replies = [record.time for record in connector.posts(successful=True)]
        await _limits_on(connector)
        first = await webhook(session, base, "fanout many to one 0")
        for number in range(1, incidents):
            await webhook(session, base, f"fanout many to one {number}")
        windows = TEAMS_CONVERSATION_LIMITS + TEAMS_BOT_LIMITS
        minimum = earliest_last_send(incidents, windows, (t - first for t in replies))
        last, throttled = await _finish(connector, incidents, 2 * minimum + 60)
    label = f"{incidents:,} incidents → one channel (per conversation)"
    return Scenario(label, incidents, minimum, last - first, throttled)


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def table(scenarios: list[Scenario]) -> list[str]:
    """The Markdown table: one row per scenario, its ratio and 429s against the goals."""
    lines = [
        "| scenario | cards | minimum s | Warden s | ratio | 429s | goal |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for s in scenarios:
        lines.append(
            f"| {s.label} | {s.cards:,} | {s.minimum:,.2f} | {s.actual:,.2f} "
            f"| {s.ratio:.2f} {_mark(s.ratio >= RATIO_GOAL)} "
            f"| {s.throttled:,} {_mark(s.throttled == 0)} | ratio ≥ {RATIO_GOAL}, no 429 |"
        )
    return lines


async def main() -> None:
    """Run the fan-out benchmark and the soak, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (CI)")
    args = parser.parse_args()
    pin_here_to_cpu1()  # the connector and the webhooks here; Warden on CPU 0
    with tempfile.TemporaryDirectory(prefix="warden-fanout-") as tmp:
        async with run_connector_sandbox() as connector:
            one = await one_to_many(connector, Path(tmp), 200 if args.quick else 1_000)
            many, soak = await asyncio.gather(
                many_to_one(connector, Path(tmp), 70 if args.quick else 1_000),
                memory.measure(5_000 if args.quick else 100_000),
            )
    scenarios = [one, many]
    print("\n".join(table(scenarios)))
    print("\nSoak (`bench.memory`: Warden, one subscribed channel, signed webhooks):\n")
    print("\n".join(soak.rows()))
    print(
        f"\nGoals: ratio ≥ {RATIO_GOAL} and no 429 in each scenario "
        f"{_mark(all(s.met for s in scenarios))}; RSS growth over the soak < 10 % "
        f"{_mark(soak.growth < 10)}. Minimum = the last send of the earliest schedule "
        "Teams' windows allow (core.pacing's limits); Warden paces with its default margin."
    )


if __name__ == "__main__":
    asyncio.run(main())
