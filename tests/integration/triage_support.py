"""A channel with a Warden card for one sandbox incident, clicked as a responder would.

Shared by the triage and ITSM link tests: Warden connected to the ARM sandbox (Sentinel, its
Entra ID and Graph), one subscribed channel, one incident's card posted there.
"""

from __future__ import annotations

from typing import Any

from app import STORE, WORKER
from cards.verbs import CardVerb
from core.store import outbox
from core.store.store import Store
from core.triage import TRIAGE_JOB
from sandbox.arm import ArmSandbox
from tests.integration.conftest import Warden, WardenFactory
from tests.support import invoke_activity


def connected_settings(arm: ArmSandbox, **more: Any) -> dict[str, Any]:
    """Settings that connect Warden to the sandbox Sentinel (webhooks, no polling)."""
    return {
        "arm_endpoint": arm.url,
        "arm_ca_bundle": arm.ca_path,
        "graph_endpoint": arm.graph_url,
        "azure_tenant_id": arm.tenant_id,
        "azure_client_id": arm.client_id,
        "azure_client_secret": arm.client_secret,
        "azure_authority_host": arm.authority,
        **more,
    }


class Desk:
    """A channel with a Warden card for one sandbox incident, and a way to click it."""

    def __init__(self, warden: Warden, arm: ArmSandbox, conversation: str, name: str) -> None:
        self.warden, self.arm, self.conversation, self.name = warden, arm, conversation, name

    @property
    def key(self) -> str:
        return str(self.arm.incident(self.name)["id"]).lower()

    def card(self) -> dict[str, Any]:
        """The newest card content the connector holds for the incident (post or update)."""
        bodies = [
            r.body
            for r in self.warden.connector.posts(self.conversation, successful=True)
            + self.warden.connector.updates(self.conversation, successful=True)
            if "attachments" in (r.body or {}) and self.key in str(r.body)
        ]
        assert bodies, "no card for the incident"
        content: dict[str, Any] = bodies[-1]["attachments"][0]["content"]
        return content

    def version(self) -> str:
        """The version the newest card's triage buttons carry."""
        return find_version(self.card())

    async def click(
        self, verb: CardVerb, inputs: dict[str, Any] | None = None, *, version: str | None = None
    ) -> dict[str, Any]:
        """Click ``verb`` on the newest card (with ``inputs``); returns the answered card."""
        data: dict[str, Any] = {"incident": self.key, **(inputs or {})}
        if verb is not CardVerb.RETRY:  # *Try again* names the action, not a version
            data["version"] = version or self.version()
        activity = invoke_activity(self.warden.connector.url, self.conversation, verb.value, data)
        response = await self.warden.client.post("/api/messages", json=activity)
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        assert body["statusCode"] == 200
        assert body["type"] == "application/vnd.microsoft.card.adaptive"
        value: dict[str, Any] = body["value"]
        return value

    @property
    def store(self) -> Store:
        return self.warden.client.app[STORE]

    async def settled(self) -> None:
        """Wait until no triage or card job is left to run."""

        async def idle() -> bool:
            return not await outbox.list_jobs(self.store, outbox.UNFINISHED)

        await self.warden.client.app[WORKER].wait_until(idle)

    async def triage_jobs(self) -> list[outbox.JobRow]:
        return [job for job in await outbox.list_jobs(self.store) if job.kind == TRIAGE_JOB]

    def comments(self) -> list[str]:
        return [str(c["properties"]["message"]) for c in self.arm.comments(self.name)]

    def properties(self) -> dict[str, Any]:
        props: dict[str, Any] = self.arm.incident(self.name)["properties"]
        return props


def find_version(card: Any) -> str:
    """The ``version`` in the first triage button's data of a card."""
    if isinstance(card, dict):
        data = card.get("data")
        if isinstance(data, dict) and "version" in data:
            return str(data["version"])
        values = list(card.values())
    elif isinstance(card, list):
        values = card
    else:
        return ""
    for value in values:
        found = find_version(value)
        if found:
            return found
    return ""


async def open_desk(
    start_warden: WardenFactory, arm: ArmSandbox, *, severity: str = "High", **settings: Any
) -> Desk:
    warden = await start_warden(**connected_settings(arm, **settings))
    conversation = await warden.subscribed_channel()
    made = arm.create_incident({"title": "Suspicious sign-in", "severity": severity})
    response = await warden.webhook(made)
    assert response.status == 202
    desk = Desk(warden, arm, conversation, made["name"])
    await warden.connector.wait_for(lambda s: warden.card_posts(conversation) or None)
    await desk.settled()
    return desk
