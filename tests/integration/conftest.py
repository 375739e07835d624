"""A running Warden (the real app, real botbuilder) wired to the sandbox connector."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app import STORE, WORKER, create_app
from cards.verbs import CardVerb
from core.settings import Settings
from core.store import outbox
from sandbox.connector import ConnectorSandbox
from sandbox.sentinel_samples import sample_incident
from tests.support import (
    channel_id,
    install_activity,
    make_settings,
    message_activity,
    signed,
)


@dataclass
class Warden:
    """A test handle on one running Warden and the sandbox it talks to."""

    client: TestClient[web.Request, web.Application]
    connector: ConnectorSandbox
    settings: Settings

    async def install(self, conversation: str) -> None:
        """Add the bot to a channel, as Teams does."""
        response = await self.client.post(
            "/api/messages", json=install_activity(self.connector.url, conversation)
        )
        assert response.status in (200, 201), await response.text()

    async def say(self, conversation: str, text: str) -> dict[str, Any]:
        """@mention the bot with ``text``; returns the card it replied with."""
        before = len(self.connector.posts())
        response = await self.client.post(
            "/api/messages", json=message_activity(self.connector.url, conversation, text)
        )
        assert response.status in (200, 201), await response.text()
        posts = self.connector.posts()[before:]
        assert posts, "the bot did not answer"
        content: dict[str, Any] = posts[-1].body["attachments"][0]["content"]
        return content

    async def subscribed_channel(self, name: str = "soc", level: str = "") -> str:
        """A channel with the bot installed and subscribed to incidents."""
        conversation = channel_id(name)
        await self.install(conversation)
        await self.say(conversation, f"subscribe incidents {level}".strip())
        return conversation

    async def webhook(self, resource: Any, **sign_options: Any) -> Any:
        """POST a signed Sentinel webhook; returns the aiohttp response."""
        body, headers = signed(resource, **sign_options)
        return await self.client.post("/api/webhooks/sentinel", data=body, headers=headers)

    async def delivered(self, count: int) -> None:
        """Wait until ``count`` outbox jobs are done (their outcome saved, not just sent)."""
        store = self.client.app[STORE]

        async def done() -> bool:
            return (await outbox.counts(store)).get(outbox.DONE, 0) >= count

        await self.client.app[WORKER].wait_until(done)

    async def jobs(self) -> int:
        """How many outbox jobs were ever enqueued (jobs commit before the 202)."""
        counts = await outbox.counts(self.client.app[STORE])
        return sum(counts.values())

    def card_posts(self, conversation: str) -> list[Any]:
        """Proactive card posts (not replies) the connector accepted in a conversation."""
        return [
            r
            for r in self.connector.posts(conversation, successful=True)
            if _is_incident_card(r.body)
        ]


def _is_incident_card(body: Any) -> bool:
    """True for an activity carrying an incident card (it has the Refresh verb)."""
    for attachment in body.get("attachments") or []:
        for action in attachment.get("content", {}).get("actions", []):
            if action.get("verb") == CardVerb.REFRESH.value:
                return True
    return False


WardenFactory = Callable[..., Awaitable[Warden]]


@pytest.fixture
async def start_warden(
    tmp_path: Path, database_url: str, connector: ConnectorSandbox
) -> AsyncIterator[WardenFactory]:
    """Start Warden (again, on the same database when called twice)."""
    clients: list[TestClient[web.Request, web.Application]] = []

    async def start(**overrides: Any) -> Warden:
        settings = make_settings(tmp_path, database_url, **overrides)
        client = TestClient(TestServer(create_app(settings)))
        try:
            await client.start_server()
        except BaseException:
            await client.close()
            raise
        clients.append(client)
        return Warden(client, connector, settings)

    yield start
    for client in clients:
        await client.close()


@pytest.fixture
async def warden(start_warden: WardenFactory) -> Warden:
    """One running Warden."""
    return await start_warden()


def incident(**options: Any) -> dict[str, Any]:
    """A fresh Sentinel incident resource."""
    return sample_incident(**options)
