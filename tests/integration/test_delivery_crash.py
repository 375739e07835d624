"""No card posted twice after a crash mid-delivery: every card exists exactly once.

Warden runs as a real process (``python app.py serve``) against the Bot Connector sandbox,
which runs in the test process and so outlives every kill, and against the Graph sandbox,
which serves the channels' messages from the connector's record. Incidents arrive through
the signed webhook for 20 subscribed channels. Just before each kill the connector answers a
few posts late, after storing them, so the kill lands between "Teams has the card" and "the
activity id is recorded"; the restarted Warden must find those cards in the channel through
Graph and adopt them, not post them again.

Sizes: by default 200 incidents × 20 channels on SQLite (three kills, a restart after each)
and 50 × 20 on PostgreSQL (three replicas, one killed); ``WARDEN_CRASH_FULL=1`` runs
1,000 × 20 for both, as issue #4 asks (several minutes).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from azure.identity.aio import ClientSecretCredential

from bot.activities import card_message
from bot.marked_posts import AmbiguousPosts, marked
from bot.outbound import ConnectorRest
from core.breaker import Breakers
from core.crypto import PayloadCipher
from core.metrics import Metrics
from core.models import ConversationRef
from core.store import outbox
from core.store.card_sends import CardSend
from core.store.store import Store
from graph.channel_messages import ChannelMessages
from sandbox.arm import ArmSandbox
from sandbox.connector import ConnectorSandbox, Fault, RequestRecord
from sandbox.graph import GraphSandbox, run_graph_sandbox
from sandbox.sentinel_samples import sample_incident
from tests.processes import free_port, wait_ready
from tests.support import ENCRYPTION_KEY, SECRET, channel_id, install_activity, signed
from tests.support import message_activity as mention

ROOT = Path(__file__).resolve().parents[2]
FULL = os.environ.get("WARDEN_CRASH_FULL") == "1"
CHANNELS = 20
INCIDENTS = 1_000 if FULL else 200
REPLICA_INCIDENTS = 1_000 if FULL else 50
LEASE_SECONDS = 5
CONCURRENCY = 16
LATE_SECONDS = 2.0
SETTLE_SECONDS = 600 if FULL else 120


@dataclass
class Sandboxes:
    """The servers Warden talks to, and the app registration it signs in with."""

    arm: ArmSandbox
    graph: GraphSandbox
    connector: ConnectorSandbox
    client_id: str
    secret: str


@pytest.fixture
async def sandboxes(arm: ArmSandbox, connector: ConnectorSandbox) -> AsyncIterator[Sandboxes]:
    """Connector, ARM (Entra ID) and Graph sandboxes; Graph reads the connector's channels."""
    app = arm.register_client("warden-delivery", graph_roles=["ChannelMessage.Read.Group"])
    async with run_graph_sandbox(arm) as graph:
        graph.channels = connector
        yield Sandboxes(arm, graph, connector, app.client_id, app.secret)


class Wardens:
    """Warden processes on one database, started and killed by the test."""

    def __init__(self, sandboxes: Sandboxes, database_url: str, var: Path) -> None:
        self.sandboxes, self.database_url, self.var = sandboxes, database_url, var
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def _env(self, port: int) -> dict[str, str]:
        s = self.sandboxes
        return {
            **os.environ,
            "WARDEN_DATABASE_URL": self.database_url,
            "WARDEN_PORT": str(port),
            "WARDEN_VAR_DIR": str(self.var / str(port)),
            "WARDEN_SENTINEL_WEBHOOK_SECRETS": SECRET,
            "WARDEN_ENCRYPTION_KEYS": ENCRYPTION_KEY,
            "WARDEN_PACING__ENABLED": "false",
            "WARDEN_OUTBOX__POLL_SECONDS": "0.2",
            "WARDEN_OUTBOX__CONCURRENCY": str(CONCURRENCY),
            "WARDEN_OUTBOX__BACKOFF_BASE_SECONDS": "0.05",
            "WARDEN_OUTBOX__LEASE_SECONDS": str(LEASE_SECONDS),
            "WARDEN_SENTINEL_COMMENTS_SECONDS": "3600",
            "WARDEN_ARM_ENDPOINT": s.arm.url,
            "WARDEN_ARM_CA_BUNDLE": str(s.arm.ca_path),
            "WARDEN_GRAPH_ENDPOINT": s.graph.graph_url,
            "AZURE_TENANT_ID": s.arm.tenant_id,
            "AZURE_CLIENT_ID": s.client_id,
            "AZURE_CLIENT_SECRET": s.secret,
            "AZURE_AUTHORITY_HOST": s.arm.authority,
        }

    async def start(self) -> tuple[str, subprocess.Popen[bytes]]:
        """One more Warden; returns its URL and process once it is ready."""
        port = free_port()
        self.var.mkdir(parents=True, exist_ok=True)
        with (self.var / f"warden-{port}.log").open("wb") as log:  # kept for a failure's story
            proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child process, not a call
                [sys.executable, "app.py", "serve"],
                cwd=ROOT,
                env=self._env(port),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs.append((f"http://127.0.0.1:{port}", proc))
        await wait_ready(self.procs[-1][0], proc)
        return self.procs[-1]

    def stop_all(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for _, proc in self.procs:
            proc.wait(timeout=20)


@pytest.fixture
async def wardens(
    sandboxes: Sandboxes, database_url: str, tmp_path: Path
) -> AsyncIterator[Wardens]:
    """The Warden processes of one test; whatever still runs is stopped at the end."""
    group = Wardens(sandboxes, database_url, tmp_path)
    try:
        yield group
    finally:
        group.stop_all()


def _incident_key(record: RequestRecord) -> str | None:
    for attachment in record.body.get("attachments") or []:
        for action in attachment.get("content", {}).get("actions", []):
            if action.get("verb") == "incident.refresh":
                return str(action["data"]["incident"])
    return None


class Tally:
    """The connector's successful card posts, counted as they are logged (each read once)."""

    def __init__(self, connector: ConnectorSandbox) -> None:
        self.connector = connector
        self.cards: Counter[tuple[str | None, str]] = Counter()
        self.sends = 0
        self.late = 0
        self._read = 0

    def update(self) -> Tally:
        """Count what was logged since the last call; returns itself, for predicates."""
        log = self.connector.requests
        for record in log[self._read :]:
            if record.ok and record.operation == "SendToConversation":
                self.sends += 1
                self.late += record.fault == "late"
                key = _incident_key(record)
                if key is not None:
                    self.cards[(record.conversation_id, key)] += 1
        self._read = len(log)
        return self

    def reached(self, sends: int) -> Callable[[ConnectorSandbox], bool]:
        """A ``wait_for`` predicate: at least ``sends`` cards posted and answered."""
        return lambda _: self.update().sends >= sends

    def unanswered(self, channels: list[str]) -> bool:
        """True while a card is stored in a channel but its post has not been answered."""
        stored = sum(
            1 for c in channels for a in self.connector.activities(c) if a.reply_to_id is None
        )
        return stored > self.update().sends


async def _subscribe(
    session: aiohttp.ClientSession, url: str, connector: ConnectorSandbox
) -> list[str]:
    channels = [channel_id(f"crash{i}") for i in range(CHANNELS)]
    for channel in channels:
        for activity in (
            install_activity(connector.url, channel),
            mention(connector.url, channel, "subscribe incidents"),
        ):
            async with session.post(f"{url}/api/messages", json=activity) as answer:
                assert answer.status == 201
    return channels


async def _send_incidents(session: aiohttp.ClientSession, urls: list[str], count: int) -> None:
    """``count`` new incidents through the webhook, 16 at a time, spread over ``urls``."""
    queue = [sample_incident(title=f"crash incident {n}") for n in range(count)]

    async def client(index: int) -> None:
        while queue:
            body, headers = signed(queue.pop())
            target = urls[index % len(urls)]
            async with session.post(
                f"{target}/api/webhooks/sentinel", data=body, headers=headers
            ) as answer:
                assert answer.status == 202, await answer.text()

    await asyncio.gather(*(client(i) for i in range(16)))


async def _kill_mid_post(
    proc: subprocess.Popen[bytes], tally: Tally, channels: list[str], late: int, held: int = 1
) -> None:
    """SIGKILL Warden while the connector holds back the answer to cards it has stored: the
    next ``late`` posts are answered late, and the kill comes once ``held`` of them are."""
    connector = tally.connector
    fault = connector.add_fault(
        Fault(delay_after=LATE_SECONDS, method="POST", path="/activities", times=late)
    )
    await connector.wait_for(lambda _: fault.applied >= held and tally.unanswered(channels), 30)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=20)
    connector.clear_faults()
    assert proc.returncode == -signal.SIGKILL


async def _settled(tally: Tally, database_url: str, expected: int) -> dict[str, int]:
    """Wait until every card is posted and no job waits; return the outbox's counts."""
    await tally.connector.wait_for(
        lambda _: len(tally.update().cards) >= expected, timeout=SETTLE_SECONDS
    )
    store = Store.from_url(database_url, cipher=PayloadCipher([ENCRYPTION_KEY]))
    try:
        async with asyncio.timeout(LEASE_SECONDS * 6):
            while True:
                counts = await outbox.counts(store)
                if not any(counts.get(status) for status in outbox.UNFINISHED):
                    return counts
                await asyncio.sleep(0.2)  # another process's work: nothing to await but its rows
    finally:
        await store.close()


async def _ambiguous(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """``warden_delivery_ambiguous_total`` of one Warden, by resolution."""
    async with session.get(f"{url}/metrics") as answer:
        text = await answer.text()
    pattern = r'^warden_delivery_ambiguous_total\{resolution="(\w+)"\} (\S+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, text, re.MULTILINE)}


def _posts_of(connector: ConnectorSandbox, card: tuple[str | None, str]) -> str:
    """The posts of one card as the connector saw them (for a failure's message)."""
    posts = [
        f"{r.time:.3f} {r.status} {r.fault} id={r.result_id} {r.traceparent}"
        for r in connector.requests
        if r.operation == "SendToConversation" and (r.conversation_id, _incident_key(r)) == card
    ]
    return f"{card[0]}: " + ", ".join(posts)


def _assert_each_card_once(tally: Tally, expected: int, counts: dict[str, int]) -> None:
    twice = [card for card, seen in tally.update().cards.items() if seen > 1]
    assert len(tally.cards) == expected
    assert twice == [], f"{len(twice)} cards were posted twice: " + "; ".join(
        _posts_of(tally.connector, card) for card in twice[:3]
    )
    assert not any(counts.get(status) for status in (*outbox.UNFINISHED, *outbox.DLQ)), counts


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_delivery_killed_three_times_mid_post_every_card_exactly_once(
    sandboxes: Sandboxes, wardens: Wardens, database_url: str
) -> None:
    """SIGKILLed three times while cards are posted, each time between Teams storing a card
    and Warden recording it: after the restarts every card exists exactly once."""
    connector, seed = sandboxes.connector, random.randrange(1 << 30)
    tally, expected = Tally(connector), INCIDENTS * CHANNELS
    marks = sorted(random.Random(seed).sample(range(expected // 10, expected * 6 // 10), 3))
    url, proc = await wardens.start()
    async with aiohttp.ClientSession() as session:
        channels = await _subscribe(session, url, connector)
        await _send_incidents(session, [url], INCIDENTS)
        for mark in marks:
            await connector.wait_for(tally.reached(mark), SETTLE_SECONDS)
            await _kill_mid_post(proc, tally, channels, late=3)
            url, proc = await wardens.start()
        counts = await _settled(tally, database_url, expected)
        resolved = await _ambiguous(session, url)
    assert tally.late >= 3, f"seed {seed}: no kill landed between storing and answering"
    _assert_each_card_once(tally, expected, counts)
    assert resolved.get("found", 0) >= 1, resolved
    assert resolved.get("unknown", 0) == 0, resolved


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_three_replicas_one_killed_mid_post_the_others_post_every_card_once(
    sandboxes: Sandboxes, wardens: Wardens, database_url: str
) -> None:
    """Three replicas on PostgreSQL, one SIGKILLed while a card it posted is unanswered: the
    other two deliver everything, and every card exists exactly once."""
    connector = sandboxes.connector
    tally, expected = Tally(connector), REPLICA_INCIDENTS * CHANNELS
    survivor, _ = await wardens.start()
    other, _ = await wardens.start()
    victim, proc = await wardens.start()
    async with aiohttp.ClientSession() as session:
        channels = await _subscribe(session, survivor, connector)
        await _send_incidents(session, [survivor, other, victim], REPLICA_INCIDENTS)
        mark = random.randrange(expected // 10, expected // 2)
        await connector.wait_for(tally.reached(mark), SETTLE_SECONDS)
        # more posts held than the two survivors run at once: some are the victim's
        await _kill_mid_post(proc, tally, channels, late=CONCURRENCY * 3, held=CONCURRENCY * 2 + 1)
        counts = await _settled(tally, database_url, expected)
        resolved = await _ambiguous(session, survivor)
    _assert_each_card_once(tally, expected, counts)
    assert resolved.get("found", 0) >= 1, resolved
    assert resolved.get("unknown", 0) == 0, resolved


class ConnectorTeams:
    """Team details from the Connector, as the Teams adapter reads them."""

    def __init__(self, rest: ConnectorRest) -> None:
        self.rest = rest

    async def team_group_id(self, ref: ConversationRef) -> str | None:
        return await self.rest.team_group_id(ref.service_url, ref.team_id or "")


async def _no_token() -> str | None:
    return None


async def _resolve(sandboxes: Sandboxes, client_id: str, secret: str, *markers: str) -> Metrics:
    """Resolve an ambiguous post for each marker in the channel ``lookup``; the metrics."""
    arm, channel, metrics = sandboxes.arm, channel_id("lookup"), Metrics()
    ref = ConversationRef(
        conversation_id=channel, service_url=sandboxes.connector.url, team_id=channel
    )
    rest = ConnectorRest(_no_token, Breakers())
    async with ClientSecretCredential(
        arm.tenant_id,
        client_id,
        secret,
        authority=arm.authority,
        connection_verify=str(arm.ca_path),
    ) as credential:
        finder = ChannelMessages(
            credential, Breakers(), base_url=sandboxes.graph.graph_url, verify=arm.ssl_context()
        )
        ambiguous = AmbiguousPosts(finder, ConnectorTeams(rest), metrics)
        try:
            for marker in markers:
                found = await ambiguous.resolve(ref, CardSend(marker, "v1", time.time() - 5))
                assert (found is not None) == marker.startswith("posted"), marker
        finally:
            await rest.close()
    return metrics


def _post_cards(connector: ConnectorSandbox, *markers: str) -> None:
    """Cards in the channel ``lookup``, the first ones marked, then 60 more (two pages)."""
    channel = channel_id("lookup")
    ref = ConversationRef(conversation_id=channel, service_url=connector.url)
    card = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "x"}]}
    for marker in markers:
        connector.post_activity(channel, card_message(ref, marked(card, marker)))
    for _ in range(60):
        connector.post_activity(channel, card_message(ref, card))


def _count(metrics: Metrics, resolution: str) -> float:
    value = metrics.registry.get_sample_value(
        "warden_delivery_ambiguous_total", {"resolution": resolution}
    )
    return value or 0.0


async def test_ambiguous_post_marker_found_through_graph_or_absent(sandboxes: Sandboxes) -> None:
    """A marked card two pages deep is found through Graph's channel messages; a marker
    that no card carries is absent; both are counted."""
    _post_cards(sandboxes.connector, "posted-1")
    metrics = await _resolve(sandboxes, sandboxes.client_id, sandboxes.secret, "posted-1", "lost")
    assert (_count(metrics, "found"), _count(metrics, "absent")) == (1, 1)
    reads = sandboxes.graph.calls("ListChannelMessages", successful=True)
    assert len(reads) >= 3  # both pages for the found one, and every page for the absent one


async def test_ambiguous_post_without_read_permission_is_unknown(sandboxes: Sandboxes) -> None:
    """Without ``ChannelMessage.Read.*`` Graph answers 403: the post cannot be checked, is
    counted unknown, and delivery posts as before."""
    _post_cards(sandboxes.connector, "posted-1")
    plain = sandboxes.arm.register_client("warden-no-rsc")
    metrics = await _resolve(sandboxes, plain.client_id, plain.secret, "lost-1")
    assert _count(metrics, "unknown") == 1
    assert [r.status for r in sandboxes.graph.calls("ListChannelMessages")] == [403]
