"""Several Warden replicas on one PostgreSQL: every card posted once, then brought up to date.

Three Warden processes share the store; webhooks arrive at all of them; one replica is
stopped half-way. Jobs are claimed with ``FOR UPDATE SKIP LOCKED`` and one at a time per
card, so no card is posted twice and no update overtakes its post.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sandbox.connector import ConnectorSandbox
from sandbox.sentinel_samples import sample_incident, updated_incident
from tests.processes import free_port, wait_ready
from tests.support import (
    ENCRYPTION_KEY,
    SECRET,
    channel_id,
    install_activity,
    message_activity,
    signed,
)

ROOT = Path(__file__).resolve().parents[2]
CHANNELS = 4
INCIDENTS = 60
pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


@pytest.fixture
async def replicas(database_url: str, tmp_path: Path) -> AsyncIterator[list[tuple[str, Any]]]:
    """Three Warden processes on one PostgreSQL database."""
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    for index in range(3):
        port = free_port()
        env = {
            **os.environ,
            "WARDEN_DATABASE_URL": database_url,
            "WARDEN_PORT": str(port),
            "WARDEN_VAR_DIR": str(tmp_path / f"replica{index}"),
            "WARDEN_SENTINEL_WEBHOOK_SECRETS": SECRET,
            "WARDEN_ENCRYPTION_KEYS": ENCRYPTION_KEY,  # replicas share their keys
            "WARDEN_PACING__ENABLED": "false",
            "WARDEN_OUTBOX__POLL_SECONDS": "0.2",
            "WARDEN_OUTBOX__BACKOFF_BASE_SECONDS": "0.05",
        }
        proc = subprocess.Popen(  # noqa: ASYNC220 - long-lived child processes, not a call
            [sys.executable, "app.py", "serve"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append((f"http://127.0.0.1:{port}", proc))
    try:
        for url, proc in procs:
            await wait_ready(url, proc)
        yield procs
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for _, proc in procs:
            proc.wait(timeout=20)


async def _post(session: aiohttp.ClientSession, url: str, resource: dict[str, Any]) -> None:
    body, headers = signed(resource)
    async with session.post(f"{url}/api/webhooks/sentinel", data=body, headers=headers) as answer:
        assert answer.status == 202, await answer.text()


def _incident_key(record: Any) -> str | None:
    for attachment in record.body.get("attachments") or []:
        for action in attachment.get("content", {}).get("actions", []):
            if action.get("verb") == "incident.refresh":
                return str(action["data"]["incident"])
    return None


async def test_replicas_one_stopped_midway_each_card_once_and_current(
    replicas: list[tuple[str, Any]], connector: ConnectorSandbox
) -> None:
    """Each incident's card appears once per channel and ends at its latest version."""
    urls = [url for url, _ in replicas]
    channels = [channel_id(f"r{i}") for i in range(CHANNELS)]
    async with aiohttp.ClientSession() as session:
        for channel in channels:
            for activity in (
                install_activity(connector.url, channel),
                message_activity(connector.url, channel, "subscribe incidents"),
            ):
                async with session.post(f"{urls[0]}/api/messages", json=activity) as answer:
                    assert answer.status == 201
        first = [sample_incident(title=f"replica incident {i}") for i in range(INCIDENTS)]
        live = list(urls)
        for index, resource in enumerate(first):
            await _post(session, live[index % len(live)], resource)
            if index == INCIDENTS // 2:
                replicas[1][1].send_signal(signal.SIGTERM)  # the balancer stops routing to it
                live.remove(urls[1])
        latest = [updated_incident(resource) for resource in first]
        for index, resource in enumerate(latest):
            await _post(session, urls[0] if index % 2 else urls[2], resource)
    expected = CHANNELS * INCIDENTS

    def settled(sandbox: ConnectorSandbox) -> bool:
        updated = {(r.conversation_id, r.activity_id) for r in sandbox.updates(successful=True)}
        return len(updated) >= expected

    await connector.wait_for(settled, timeout=90)
    cards = [(r.conversation_id, _incident_key(r)) for r in connector.posts(successful=True)]
    counts = Counter(card for card in cards if card[1] is not None)
    assert len(counts) == expected
    assert max(counts.values()) == 1, "a card was posted twice"
    for record in connector.updates(successful=True):
        assert record.status == 200
    last_bodies = {
        (r.conversation_id, r.activity_id): json.dumps(r.body) for r in connector.updates()
    }
    assert all("Adele Vance" in body for body in last_bodies.values())
