"""Steps the Playground journeys share: a subscribed channel, an incident's card posted there.

Also reads a card frame: its content as text, and the data of its triage buttons.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from sandbox.playground_client import ConversationStream, Frame, PlaygroundClient
from tests.support import signed

STEP_SECONDS = 60.0
"""How long a journey's step (a card, its update) may take to show. A wait ends as soon as
the step is seen; this only bounds a CI machine loaded by the other tests, where the work
behind a step (an outbox job, a SharePoint filing) waits for the core."""


def content(frame: Frame) -> str:
    """A frame's card contents as JSON text."""
    return json.dumps([a.get("content") for a in frame.attachments])


def triage_data(frame: Frame) -> dict[str, Any]:
    """The incident and version the card's triage buttons carry."""
    for attachment in frame.attachments:
        for action in attachment["content"]["actions"]:
            if action.get("verb") == "incident.details":
                return dict(action["data"])
    raise AssertionError("the card has no triage buttons")


async def incident_card(
    client: PlaygroundClient,
    stream: ConversationStream,
    channel: str,
    warden_url: str,
    made: dict[str, Any],
    title: str,
) -> tuple[Frame, str]:
    """Install Warden in ``channel``, subscribe it, send incident ``made`` by signed webhook;
    the card's frame and its thread once Warden has recorded the post."""
    await client.install(channel)
    await client.send_message(channel, "subscribe incidents")
    await stream.wait_for(lambda f: "Subscribed to incidents" in content(f), timeout=STEP_SECONDS)
    body, headers = signed(made)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{warden_url}/api/webhooks/sentinel", data=body, headers=headers) as r,
    ):
        assert r.status == 202
    card = await stream.wait_for(
        lambda f: f.action == "createMessage" and title in content(f), timeout=STEP_SECONDS
    )
    thread = card.post_conversation_id or channel
    assert card.message_id is not None
    key = {"incident": str(made["id"]).lower()}
    for _ in range(50):  # Warden records the post once Teams has answered it
        shown = await client.invoke_action(thread, card.message_id, "incident.refresh", key)
        if title in json.dumps(shown):
            break
        await asyncio.sleep(0.1)
    return card, thread
