"""The foundation's journey in the Agents Playground, as a responder meets it.

Warden and the Playground run on free ports; the test installs the bot into a channel through
the Playground's HTTP API, subscribes with an @mention, posts signed Sentinel webhooks, and
watches the Playground's conversation stream: the card arrives, then the same message changes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from app import create_app
from sandbox.playground import Playground
from sandbox.playground_client import Frame, PlaygroundClient
from sandbox.sentinel_samples import sample_incident, updated_incident
from tests.processes import free_port
from tests.support import make_settings, signed

pytestmark = pytest.mark.e2e


@pytest.fixture
async def warden_url(tmp_path: Path, sqlite_url: str) -> AsyncIterator[str]:
    """Warden serving on a free local port (sandbox mode, SQLite)."""
    port = free_port()
    app = create_app(make_settings(tmp_path, sqlite_url, port=port))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _webhook(warden_url: str, resource: dict[str, Any]) -> None:
    body, headers = signed(resource)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{warden_url}/api/webhooks/sentinel", data=body, headers=headers) as response,
    ):
        assert response.status == 202, await response.text()


def _card_text(frame: Frame) -> str:
    return json.dumps([a.get("content") for a in frame.attachments])


async def test_playground_subscribe_then_incident_card_posted_and_updated(
    teams: tuple[Playground, PlaygroundClient], warden_url: str
) -> None:
    """A subscribed channel shows the incident card, and a newer version changes that card."""
    _, client = teams
    config = await client.test_config()
    channel = config.general_channel_id
    async with client.stream() as stream:
        await client.install(channel)
        welcome = await stream.wait_for_create(from_id=config.bot_id, conversation_id=channel)
        assert "subscribe incidents" in _card_text(welcome)
        mark = stream.mark()
        await client.send_message(channel, "subscribe incidents")
        answer = await stream.wait_for_create(from_id=config.bot_id, since=mark)
        assert "Subscribed to incidents" in _card_text(answer)

        resource = sample_incident(title="Ransomware activity on FIN-SRV-02", number=5150)
        mark = stream.mark()
        await _webhook(warden_url, resource)
        card = await stream.wait_for(
            lambda f: f.action == "createMessage" and "FIN-SRV-02" in _card_text(f), since=mark
        )
        assert card.conversation_id == channel
        assert card.from_id == config.bot_id
        assert not card.text
        assert card.message_id is not None

        await _webhook(warden_url, updated_incident(resource))
        update = await stream.wait_for_update(card.message_id)
        assert "Adele Vance" in _card_text(update)
        assert "Active" in _card_text(update)
        assert len([f for f in stream.created() if "FIN-SRV-02" in _card_text(f)]) == 1

        answer = await client.invoke_action(
            card.post_conversation_id or channel,
            card.message_id,
            "incident.refresh",
            {"incident": resource["id"].lower()},
            title="Refresh",
        )
        assert answer["type"] == "application/vnd.microsoft.card.adaptive"
        assert "Adele Vance" in json.dumps(answer["value"])
