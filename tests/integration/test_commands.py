"""Commands typed in Teams, answered through the real CloudAdapter and the sandbox connector."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from app import STORE
from connectors.resourcegraph.cmdb_sync import CmdbRun
from core.itsm import ConfigurationItem
from core.store import cmdb_cis
from tests.integration.conftest import Warden, WardenFactory, incident
from tests.support import TENANT, channel_id, install_activity, removal_activity


def _facts(card: dict[str, Any]) -> dict[str, str]:
    """The title → value pairs of a card's first FactSet."""
    fact_set = next(item for item in card["body"] if item["type"] == "FactSet")
    return {fact["title"]: fact["value"] for fact in fact_set["facts"]}


async def test_install_channel_welcome_card_sent(warden: Warden) -> None:
    """Adding the bot to a channel stores it and sends one welcome card."""
    conversation = channel_id()
    await warden.install(conversation)
    posts = warden.connector.posts(conversation, successful=True)
    assert len(posts) == 1
    assert "subscribe incidents" in str(posts[0].body["attachments"][0]["content"])


async def test_help_command_lists_every_command(warden: Warden) -> None:
    """`help` answers with the command list."""
    conversation = channel_id()
    await warden.install(conversation)
    card = str(await warden.say(conversation, "help"))
    for command in ("subscribe incidents", "unsubscribe incidents", "status"):
        assert command in card


async def test_unknown_command_help_with_closest(warden: Warden) -> None:
    """A typo gets the help card with the closest command."""
    conversation = channel_id()
    await warden.install(conversation)
    card = str(await warden.say(conversation, "subscrbe incidents"))
    assert "Did you mean" in card and "subscribe incidents" in card


async def test_subscribe_bad_severity_explained(warden: Warden) -> None:
    """An unknown severity is explained, and no subscription is made."""
    conversation = channel_id()
    await warden.install(conversation)
    card = str(await warden.say(conversation, "subscribe incidents critical"))
    assert "informational, low, medium, high" in card
    status = await warden.say(conversation, "status")
    assert "not subscribed" in _facts(status)["Subscription"].lower()


async def test_status_after_delivery_counts_posted(warden: Warden) -> None:
    """`status` shows the subscription and the number of incidents posted."""
    conversation = await warden.subscribed_channel(level="medium")
    await warden.webhook(incident())
    await warden.delivered(1)
    card = await warden.say(conversation, "status")
    assert _facts(card)["Subscription"] == "Medium severity incidents and above"
    assert _facts(card)["Incidents posted"] == "1"
    assert _facts(card)["Dead letters"] == "0"


async def test_unsubscribe_stops_cards(warden: Warden) -> None:
    """After `unsubscribe incidents` no new incident is posted."""
    conversation = await warden.subscribed_channel()
    card = str(await warden.say(conversation, "unsubscribe incidents"))
    assert "incidents" in card.lower()
    await warden.webhook(incident())
    assert await warden.jobs() == 0


async def test_bot_removed_conversation_gets_nothing(warden: Warden) -> None:
    """After the bot is removed from a team, incidents create no work for that channel."""
    conversation = await warden.subscribed_channel()
    response = await warden.client.post(
        "/api/messages", json=removal_activity(warden.connector.url, conversation)
    )
    assert response.status in (200, 201)
    await warden.webhook(incident())
    assert await warden.jobs() == 0


async def test_install_announced_twice_concurrently_one_welcome(warden: Warden) -> None:
    """Teams sends installationUpdate and conversationUpdate together: one welcome only."""
    conversation = channel_id("twice")
    member_update = install_activity(warden.connector.url, conversation)
    installation = {**member_update, "type": "installationUpdate", "action": "add"}
    installation.pop("membersAdded")
    answers = await asyncio.gather(
        warden.client.post("/api/messages", json=installation),
        warden.client.post("/api/messages", json=member_update),
    )
    assert all(answer.status in (200, 201) for answer in answers)
    assert len(warden.connector.posts(conversation, successful=True)) == 1


async def test_tenant_not_allowed_refused_nothing_stored(start_warden: WardenFactory) -> None:
    """With an allowlist, an activity from another tenant gets 403 and changes nothing."""
    warden = await start_warden(allowed_tenant_ids="00000000-0000-0000-0000-00000000beef")
    conversation = channel_id("foreign")
    response = await warden.client.post(
        "/api/messages", json=install_activity(warden.connector.url, conversation)
    )
    assert response.status == 403
    assert await response.text() == ""
    assert warden.connector.posts(conversation) == []


async def test_tenant_allowed_served(start_warden: WardenFactory) -> None:
    """An activity from an allowed tenant is served as usual (case-insensitive match)."""
    warden = await start_warden(allowed_tenant_ids=TENANT.upper())
    conversation = channel_id("home")
    await warden.install(conversation)
    assert len(warden.connector.posts(conversation)) == 1


async def test_subscribe_unsubscribe_recorded_in_admin_audit(warden: Warden) -> None:
    """Subscribing and unsubscribing are recorded with the person's Entra object id."""
    from app import STORE
    from core.store import admin_audit

    conversation = await warden.subscribed_channel(level="high")
    await warden.say(conversation, "unsubscribe incidents")
    entries = await admin_audit.entries(warden.client.app[STORE])
    assert [(e.action, e.target) for e in entries] == [
        ("unsubscribe", conversation),
        ("subscribe", conversation),
    ]
    assert entries[1].details == {"min_severity": "High"}
    assert entries[0].actor == "2046feea-040d-4a46-9e2b-91c2941bfa70"


def _text(card: dict[str, Any]) -> str:
    """Every text block and fact of a card, joined."""
    parts: list[str] = []
    for item in card["body"]:
        if item["type"] == "TextBlock":
            parts.append(item["text"])
        elif item["type"] == "FactSet":
            parts += [f"{fact['title']}: {fact['value']}" for fact in item["facts"]]
    return "\n".join(parts)


async def test_status_cmdb_sync_never_run_shows_no_cmdb_section(warden: Warden) -> None:
    """Before any CMDB sync, `status` says nothing about the CMDB."""
    conversation = channel_id()
    await warden.install(conversation)
    assert "CMDB sync" not in _text(await warden.say(conversation, "status"))


async def test_status_after_cmdb_sync_shows_its_last_run_and_counts(warden: Warden) -> None:
    """`status` shows the CMDB sync's last run as its checkpoint holds it, with the CIs
    stored and how many need tags (what `/readyz` reports)."""
    store = warden.client.app[STORE]
    seen = datetime.now(UTC)
    tagged = ConfigurationItem(
        ci_id="/subscriptions/s/resourcegroups/rg/providers/microsoft.web/sites/app-1",
        name="app-1",
        type="microsoft.web/sites",
        owner="Megan Bowen",
        env="prod",
        last_seen_utc=seen,
    )
    untagged = tagged.model_copy(update={"ci_id": tagged.ci_id + "-b", "name": "app-1-b"})
    untagged = untagged.model_copy(update={"owner": None, "env": None})
    run = CmdbRun(run=1, started_at=seen, pages=1, read=2)
    await cmdb_cis.store_page(store, [tagged, untagged], 1, run.model_dump_json())
    done = run.model_copy(update={"finished_at": seen})
    await cmdb_cis.finish_run(store, 1, 3, done.model_dump_json())
    conversation = channel_id()
    await warden.install(conversation)
    shown = _text(await warden.say(conversation, "status"))
    assert "CMDB sync" in shown and "Run 1: finished" in shown
    assert "CIs: 2 active, 0 retired" in shown and "Needing tags: 1" in shown
    assert "Resources read: 2" in shown and "Stopped:" not in shown
