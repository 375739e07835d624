"""Outbound card posts and updates: Warden against stock botbuilder and raw httpx.

The connector sandbox runs in its own process pinned to CPU 0; the clients run here, on
CPU 1. Each client posts incident cards for half the measurement (16 at a time, sequential
per conversation, spread over 64 conversations), then updates every card it posted, one
after the other per conversation. Clients, measured one after the other in one run:

- raw: one ``httpx.AsyncClient`` POSTing and PUTting pre-serialized activity JSON (the
  floor), and the same with one ``aiohttp.ClientSession`` (httpx's pool is slow with many
  requests in flight: encode/httpx#3215);
- stock: botbuilder's ``ConnectorClient`` (anonymous ``MicrosoftAppCredentials("", "")``),
  a new client per call as ``CloudAdapter`` makes one per turn, and one shared client;
- Warden: ``TeamsAdapter.post_card`` / ``update_card`` (sandbox mode, no app id).

Stock runs before Warden is built: ``TeamsAdapter`` tunes msrest for the whole process.
Prints cards per second and p99 of each, and the ratios Warden/stock and Warden/raw; and
the client CPU per card of stock over Warden's (what each card costs the sender, whatever
the connector's own speed: the cards/s of the fastest clients are bounded by the connector
sandbox on its one core, raw aiohttp included).
``--quick`` runs a short pass for CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import httpx

from bench.turns import pin_here_to_cpu1, process
from bot.types import Card, CardAction, Membership, Message
from cards.incident import incident_card
from connectors.sentinel.mapping import incident_from_webhook
from core.models import ConversationRef
from sandbox.sentinel_samples import sample_incident, updated_incident
from tests.support import BOT, channel_id

CONCURRENCY = 16
CONVERSATIONS = 64
CARD_TYPE = "application/vnd.microsoft.card.adaptive"


class Client(Protocol):
    """What a measured client does: post a card, update a posted one."""

    async def post(self, conversation: str) -> str:
        """Post the first card into ``conversation``; return the new activity's id."""

    async def update(self, conversation: str, activity_id: str) -> None:
        """Replace the card at ``activity_id`` with the second card."""


@dataclass
class Phase:
    """Calls of one kind that succeeded, how long they took in all and each."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Calls per second."""
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    @property
    def p99_ms(self) -> float:
        """The 99th percentile latency in milliseconds."""
        if len(self.latencies) < 2:
            return self.latencies[0] * 1000 if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100)[-1] * 1000


@dataclass
class Result:
    """A client's posts then updates, and this process's CPU seconds per call."""

    posts: Phase
    updates: Phase
    cpu_per_call: float = 0.0

    @property
    def rate(self) -> float:
        """Cards (posted or updated) per second over both phases."""
        calls = len(self.posts.latencies) + len(self.updates.latencies)
        seconds = self.posts.seconds + self.updates.seconds
        return calls / seconds if seconds else 0.0


def cards() -> tuple[Card, Card]:
    """A realistic incident card, and the card of the incident's next version."""
    resource = sample_incident()
    first = incident_card(incident_from_webhook(resource))
    return first, incident_card(incident_from_webhook(updated_incident(resource)))


def activity_json(service_url: str, conversation: str, card: Card) -> dict[str, Any]:
    """The activity botbuilder sends for a proactive card post (and the raw client too)."""
    return {
        "type": "message",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": BOT,
        "conversation": {"id": conversation, "isGroup": True, "conversationType": "channel"},
        "attachments": [{"contentType": CARD_TYPE, "content": card}],
    }


class RawClient:
    """Straight to the Connector REST API with pre-serialized bodies: the floor.

    ``http`` is an ``httpx.AsyncClient`` or an ``aiohttp.ClientSession``.
    """

    def __init__(
        self,
        http: httpx.AsyncClient | aiohttp.ClientSession,
        service_url: str,
        first: Card,
        second: Card,
    ) -> None:
        """Serialize both cards' activities for every conversation once, up front."""
        self._http, self._base = http, service_url + "v3/conversations/"
        self._bodies = {
            channel_id(f"d{i}"): tuple(
                json.dumps(activity_json(service_url, channel_id(f"d{i}"), card)).encode()
                for card in (first, second)
            )
            for i in range(CONVERSATIONS)
        }
        self._headers = {"Content-Type": "application/json"}

    async def _send(self, method: str, url: str, body: bytes) -> Any:
        if isinstance(self._http, httpx.AsyncClient):
            response = await self._http.request(method, url, content=body, headers=self._headers)
            response.raise_for_status()
            return response.json()
        async with self._http.request(method, url, data=body, headers=self._headers) as answer:
            answer.raise_for_status()
            return await answer.json()

    async def post(self, conversation: str) -> str:
        """POST the first card."""
        url = f"{self._base}{conversation}/activities"
        answer = await self._send("POST", url, self._bodies[conversation][0])
        return str(answer["id"])

    async def update(self, conversation: str, activity_id: str) -> None:
        """PUT the second card."""
        url = f"{self._base}{conversation}/activities/{activity_id}"
        await self._send("PUT", url, self._bodies[conversation][1])


class StockClient:
    """botbuilder's ``ConnectorClient``: a new one per call (as CloudAdapter does), or one."""

    def __init__(self, service_url: str, first: Card, second: Card, *, shared: bool) -> None:
        """Anonymous credentials, as a bot without an app id has."""
        from botframework.connector.aio import ConnectorClient
        from botframework.connector.auth import MicrosoftAppCredentials

        self._url, self._cards = service_url, (first, second)

        def new() -> Any:
            return ConnectorClient(MicrosoftAppCredentials("", ""), base_url=service_url)

        shared_client = new() if shared else None
        self._client: Callable[[], Any] = (lambda: shared_client) if shared else new

    def _activity(self, conversation: str, index: int) -> Any:
        from botbuilder.schema import Activity

        return Activity().deserialize(activity_json(self._url, conversation, self._cards[index]))

    async def post(self, conversation: str) -> str:
        """``conversations.send_to_conversation`` with the first card."""
        activity = self._activity(conversation, 0)
        sent = await self._client().conversations.send_to_conversation(conversation, activity)
        return str(sent.id)

    async def update(self, conversation: str, activity_id: str) -> None:
        """``conversations.update_activity`` with the second card."""
        activity = self._activity(conversation, 1)
        activity.id = activity_id
        await self._client().conversations.update_activity(conversation, activity_id, activity)


class _NoTurns:
    """A ``TurnHandler`` for an adapter that only sends: it never gets a turn here."""

    async def on_message(self, message: Message) -> list[Card]:
        """No answer."""
        return []

    async def on_membership(self, change: Membership) -> list[Card]:
        """No answer."""
        return []

    async def on_card_action(self, action: CardAction) -> Card:
        """An empty card."""
        return {}


class WardenClient:
    """Warden's ``TeamsAdapter`` in sandbox mode (no app id): ``post_card``/``update_card``."""

    def __init__(
        self, http: httpx.AsyncClient, service_url: str, first: Card, second: Card, var_dir: Path
    ) -> None:
        """Build the adapter as ``app.create_app`` does (breakers, metrics)."""
        from bot.adapter import TeamsAdapter
        from core.breaker import Breakers
        from core.metrics import Metrics
        from core.settings import Mode, Settings

        settings = Settings.model_validate(
            {"mode": Mode.SANDBOX, "var_dir": var_dir, "microsoft_app_id": ""}
        )
        del http  # Warden brings its own pooled connector session
        self._adapter = TeamsAdapter(settings, _NoTurns(), Breakers(), metrics=Metrics())
        self._cards = (first, second)
        self._refs = {
            channel_id(f"d{i}"): ConversationRef(
                conversation_id=channel_id(f"d{i}"), service_url=service_url, bot_id=BOT["id"]
            )
            for i in range(CONVERSATIONS)
        }

    async def close(self) -> None:
        """Close the adapter's pooled connector session."""
        await self._adapter.close()

    async def post(self, conversation: str) -> str:
        """``TeamsAdapter.post_card`` with the first card."""
        return await self._adapter.post_card(self._refs[conversation], self._cards[0])

    async def update(self, conversation: str, activity_id: str) -> None:
        """``TeamsAdapter.update_card`` with the second card."""
        await self._adapter.update_card(self._refs[conversation], activity_id, self._cards[1])


async def _timed(call: Awaitable[Any], latencies: list[float]) -> Any:
    started = time.perf_counter()
    value = await call
    latencies.append(time.perf_counter() - started)
    return value


async def exercise(client: Client, seconds: float) -> Result:
    """Posts for ``seconds / 2`` by ``CONCURRENCY`` workers, then updates of every post."""
    posted: list[list[tuple[str, str]]] = [[] for _ in range(CONCURRENCY)]
    posts, updates = Phase(), Phase()
    deadline = time.perf_counter() + seconds / 2

    async def post(worker: int) -> None:
        mine = [channel_id(f"d{i}") for i in range(worker, CONVERSATIONS, CONCURRENCY)]
        while time.perf_counter() < deadline:
            conversation = mine[len(posted[worker]) % len(mine)]
            activity_id = await _timed(client.post(conversation), posts.latencies)
            posted[worker].append((conversation, activity_id))

    async def update(worker: int) -> None:
        for conversation, activity_id in posted[worker]:
            await _timed(client.update(conversation, activity_id), updates.latencies)

    cpu = time.process_time()
    for phase, work in ((posts, post), (updates, update)):
        started = time.perf_counter()
        await asyncio.gather(*(work(w) for w in range(CONCURRENCY)))
        phase.seconds = time.perf_counter() - started
    calls = len(posts.latencies) + len(updates.latencies)
    return Result(posts, updates, (time.process_time() - cpu) / max(calls, 1))


async def measure(client: Client, seconds: float) -> Result:
    """A short warm-up (connections, caches), then the measured run."""
    await exercise(client, min(0.5, seconds / 4))
    try:
        return await exercise(client, seconds)
    finally:
        closing = getattr(client, "close", None)
        if closing is not None:
            await closing()


@asynccontextmanager
async def connector(log: Path) -> AsyncIterator[str]:
    """The connector sandbox in its own process on CPU 0; yields its service URL."""
    command = [
        sys.executable,
        "-m",
        "sandbox.connector",
        "--port",
        "{port}",
        "--log-level",
        "WARNING",
    ]
    async with process(command, 0, "/_sandbox/mode", log) as port:
        yield f"http://127.0.0.1:{port}/"


async def run_all(seconds: float) -> dict[str, Result]:
    """Every client against one connector sandbox, reset between clients."""
    first, second = cards()
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="warden-delivery-") as tmp:
        async with (
            connector(Path(tmp) / "connector.log") as url,
            httpx.AsyncClient() as http,
            httpx.AsyncClient(timeout=10.0) as warden_http,
            aiohttp.ClientSession() as session,
        ):
            makers: dict[str, Callable[[], Client]] = {
                "raw": lambda: RawClient(http, url, first, second),
                "raw-aiohttp": lambda: RawClient(session, url, first, second),
                "stock": lambda: StockClient(url, first, second, shared=False),
                "stock-shared": lambda: StockClient(url, first, second, shared=True),
                "warden": lambda: WardenClient(warden_http, url, first, second, Path(tmp)),
            }
            for name, make in makers.items():
                results[name] = await measure(make(), seconds)
                (await http.post(url + "_sandbox/reset")).raise_for_status()
    return results


LABELS = {
    "raw": "raw `httpx.AsyncClient` (one pooled client; the floor)",
    "raw-aiohttp": "raw `aiohttp.ClientSession` (one pooled session)",
    "stock": "stock `ConnectorClient`, one per call (as `CloudAdapter`)",
    "stock-shared": "stock `ConnectorClient`, one shared",
    "warden": "Warden `TeamsAdapter.post_card` / `update_card`",
}


def table(results: dict[str, Result]) -> list[str]:
    """The Markdown table, one row per client, with Warden's ratios."""
    lines = [
        "| client | cards/s | posts/s | updates/s | p99 post ms | p99 update ms "
        "| client CPU ms/card | Warden/this |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    warden = results["warden"].rate
    for name, result in results.items():
        ratio = f"{warden / result.rate:.2f}" if result.rate and name != "warden" else "—"
        lines.append(
            f"| {LABELS[name]} | {result.rate:,.0f} | {result.posts.rate:,.0f} "
            f"| {result.updates.rate:,.0f} | {result.posts.p99_ms:,.1f} "
            f"| {result.updates.p99_ms:,.1f} | {result.cpu_per_call * 1000:.2f} | {ratio} |"
        )
    return lines


async def main() -> None:
    """Run the delivery benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (CI)")
    args = parser.parse_args()
    pin_here_to_cpu1()  # the clients on CPU 1, the connector on CPU 0
    results = await run_all(2.0 if args.quick else 8.0)
    print("\n".join(table(results)))
    warden, cpu = results["warden"].rate, results["warden"].cpu_per_call
    stock_cpu = results["stock"].cpu_per_call / cpu if cpu else 0.0
    print(
        f"\nWarden/stock (one client per call) = {warden / results['stock'].rate:.2f}, "
        f"Warden/raw (httpx) = {warden / results['raw'].rate:.2f}; client CPU per card, "
        f"stock/Warden = {stock_cpu:.1f}. {CONCURRENCY} calls at a "
        f"time, sequential per conversation over {CONVERSATIONS} conversations; posts for "
        "half the run, then one update of every card posted. Client CPU: this process's "
        "CPU time per card (threads included), whatever the connector's own speed."
    )


if __name__ == "__main__":
    asyncio.run(main())
