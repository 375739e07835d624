"""Triage from the card: each verb end to end against the Bot Connector and ARM sandboxes.

The click is an ``adaptiveCard/action`` invoke to Warden; the write goes through the real
SentinelClient and azure-identity to the ARM sandbox (TLS, Entra token endpoint); the card
updates arrive at the connector sandbox; responder membership is asked of the sandbox's
Graph ``checkMemberGroups`` through msgraph-sdk.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cards.verbs import CardVerb
from sandbox.arm import ArmSandbox, Fault
from tests.integration.conftest import WardenFactory
from tests.integration.triage_support import open_desk
from tests.support import USER, channel_id, invoke_activity, message_activity

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)

RESPONDERS = "6f1c2e8a-41a4-4c57-9a55-0c1f4d1b2e77"


async def test_assign_to_me_writes_owner_and_attribution(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """*Assign to me*: the answer shows "applying…" at once; Sentinel gets the owner and an
    attribution comment; every card then shows the owner and who did it."""
    desk = await open_desk(start_warden, arm)
    answer = await desk.click(CardVerb.ASSIGN_ME)
    assert "Applying" in str(answer)
    await desk.settled()
    owner = desk.properties()["owner"]
    assert owner["objectId"] == USER["aadObjectId"]
    assert "Assigned to Adele Vance by Adele Vance via Teams" in desk.comments()
    card = str(desk.card())
    assert "Done" in card and "Adele Vance" in card


async def test_severity_change_applied_and_attributed(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """*Severity…* High → Medium lands in Sentinel, named in a comment, shown on the card."""
    desk = await open_desk(start_warden, arm)
    await desk.click(CardVerb.SEVERITY, {"severity": "Medium"})
    await desk.settled()
    assert desk.properties()["severity"] == "Medium"
    assert "Severity High \u2192 Medium by Adele Vance via Teams" in desk.comments()
    assert "MEDIUM" in str(desk.card())


async def test_close_needs_classification_and_comment_then_cannot_close_again(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """Closing without a comment is refused with the reason; with one it closes as asked;
    a closed incident cannot be closed again."""
    desk = await open_desk(start_warden, arm)
    refused = await desk.click(CardVerb.CLOSE, {"classification": "FalsePositive:InaccurateData"})
    assert "a comment is needed" in str(refused)
    assert not await desk.triage_jobs()
    await desk.click(
        CardVerb.CLOSE,
        {"classification": "FalsePositive:InaccurateData", "comment": "Test tenant noise"},
    )
    await desk.settled()
    props = desk.properties()
    assert props["status"] == "Closed"
    assert props["classification"] == "FalsePositive"
    assert props["classificationReason"] == "InaccurateData"
    assert props["classificationComment"] == "Test tenant noise"
    again = await desk.click(CardVerb.CLOSE, {"classification": "Undetermined", "comment": "again"})
    assert "already closed" in str(again)


async def test_comment_reaches_sentinel_with_author(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """*Comment…* adds a Sentinel comment that names its author."""
    desk = await open_desk(start_warden, arm)
    await desk.click(CardVerb.COMMENT, {"comment": "Looking into the sign-in logs"})
    await desk.settled()
    assert "Looking into the sign-in logs\n\n\u2014 Adele Vance via Teams" in desk.comments()


async def test_click_on_stale_card_refused_with_current_card(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """A click on a card older than the stored incident changes nothing and says why."""
    desk = await open_desk(start_warden, arm)
    old = desk.version()
    changed = arm.portal_update(desk.name, severity="Low")
    await desk.warden.webhook(changed)
    await desk.settled()
    answer = await desk.click(CardVerb.SEVERITY, {"severity": "Medium"}, version=old)
    assert "changed since your card was drawn" in str(answer)
    assert "LOW" in str(answer)
    await desk.settled()
    assert desk.properties()["severity"] == "Low"
    assert not arm.calls("Incidents_CreateOrUpdate")
    assert not await desk.triage_jobs()


async def test_change_in_portal_before_write_is_a_conflict(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """Changed in the portal (Warden not yet told): the write is refused as a conflict, the
    card shows the incident as it is now, and Sentinel keeps the portal's value."""
    desk = await open_desk(start_warden, arm)
    arm.portal_update(desk.name, severity="Low")
    await desk.click(CardVerb.SEVERITY, {"severity": "Medium"})
    await desk.settled()
    assert desk.properties()["severity"] == "Low"
    card = str(desk.card())
    assert "Not applied" in card and "severity is now Low" in card and "LOW" in card


async def test_two_people_same_field_second_sees_conflict(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """Two severity clicks on the same card: the first lands, the second is told, never a
    silent overwrite."""
    desk = await open_desk(start_warden, arm)
    version = desk.version()
    await desk.click(CardVerb.SEVERITY, {"severity": "Medium"}, version=version)
    await desk.click(CardVerb.SEVERITY, {"severity": "Low"}, version=version)
    await desk.settled()
    assert desk.properties()["severity"] == "Medium"
    assert "severity is now Medium" in str(desk.card())


async def test_outside_responder_groups_refused_member_allowed(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """With responder groups set (the older WARDEN_RESPONDER_GROUP_IDS), a non-member is
    refused politely and nothing changes; once in the group (and the cache expired) the same
    click works."""
    desk = await open_desk(
        start_warden, arm, responder_group_ids=RESPONDERS, responder_cache_seconds=0
    )
    refused = await desk.click(CardVerb.ASSIGN_ME)
    assert "Only people with Warden's Responder role" in str(refused)
    assert not await desk.triage_jobs()
    arm.set_member_groups(str(USER["aadObjectId"]), [RESPONDERS])
    await desk.click(CardVerb.ASSIGN_ME)
    await desk.settled()
    assert desk.properties()["owner"]["objectId"] == USER["aadObjectId"]
    assert [r for r in arm.calls(service="graph") if "checkMemberGroups" in r.path]


async def test_sentinel_down_waits_then_applies(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """Sentinel down: the action waits (the card says so) and is applied when it is back."""
    desk = await open_desk(start_warden, arm, outbox__base_delay_seconds=0.05)
    arm.set_down(True, retry_after=0.2)
    await desk.click(CardVerb.SEVERITY, {"severity": "Medium"})
    await desk.warden.connector.wait_for(
        lambda s: "Waiting for Sentinel" in str(desk.card()) or None, timeout=20
    )
    arm.set_down(False)
    await desk.settled()
    assert desk.properties()["severity"] == "Medium"
    assert "Done" in str(desk.card())


async def test_refused_write_offers_try_again(start_warden: WardenFactory, arm: ArmSandbox) -> None:
    """A write Sentinel refuses (400) is *not applied* with a *Try again* button, which
    applies it once Sentinel accepts."""
    desk = await open_desk(start_warden, arm)
    arm.add_fault(Fault(status=400, method="PUT", times=1, code="BadRequest"))
    await desk.click(CardVerb.SEVERITY, {"severity": "Medium"})
    await desk.settled()
    card = desk.card()
    assert "Not applied" in str(card) and CardVerb.RETRY.value in str(card)
    intent = _retry_intent(card)
    await desk.click(CardVerb.RETRY, {"action": intent})
    await desk.settled()
    assert desk.properties()["severity"] == "Medium"


def _retry_intent(card: Any) -> str:
    text = str(card)
    marker = "'action': '"
    start = text.index(marker, text.index(CardVerb.RETRY.value)) + len(marker)
    return text[start : text.index("'", start)]


async def test_triage_data_with_extra_field_refused(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """A crafted payload that adds a field (an owner) is refused: no mass assignment."""
    desk = await open_desk(start_warden, arm)
    answer = await desk.click(CardVerb.SEVERITY, {"severity": "Low", "owner": "mallory"})
    assert "unexpected" in str(answer)
    assert not await desk.triage_jobs()


async def test_triage_from_another_conversation_refused(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """A captured triage payload replayed from a conversation without the card is refused."""
    desk = await open_desk(start_warden, arm)
    other = channel_id("elsewhere")
    await desk.warden.install(other)
    data = {"incident": desk.key, "version": desk.version()}
    activity = invoke_activity(desk.warden.connector.url, other, CardVerb.ASSIGN_ME.value, data)
    response = await desk.warden.client.post("/api/messages", json=activity)
    body = await response.json()
    assert "Not available here" in str(body["value"])
    assert not await desk.triage_jobs()


async def test_assign_to_picked_person_names_them_once_applied(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """*Assign to…* with the people picker's object id: Sentinel resolves the person, and
    the attribution comment and the card name them."""
    desk = await open_desk(start_warden, arm)
    picked = arm.add_user("Megan Bowen", "megan.bowen@contoso.com")
    await desk.click(CardVerb.ASSIGN, {"assignee": picked.object_id})
    await desk.settled()
    assert desk.properties()["owner"]["objectId"] == picked.object_id
    assert "Assigned to Megan Bowen by Adele Vance via Teams" in desk.comments()
    assert "Owner: Megan Bowen" in str(desk.card())


async def test_reply_in_card_thread_becomes_comment_by_its_author(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """A reply typed in the card's thread is added to the incident as its author's comment;
    the card then says so. A command typed there is still a command."""
    desk = await open_desk(start_warden, arm)
    root = desk.warden.card_posts(desk.conversation)[0].result_id
    activity = message_activity(
        desk.warden.connector.url, desk.conversation, "Checked the VPN logs", thread=root
    )
    response = await desk.warden.client.post("/api/messages", json=activity)
    assert response.status in (200, 201)
    await desk.settled()
    assert "Checked the VPN logs\n\n\u2014 Adele Vance via Teams" in desk.comments()
    assert "Done" in str(desk.card())
    command = message_activity(desk.warden.connector.url, desk.conversation, "status", thread=root)
    assert (await desk.warden.client.post("/api/messages", json=command)).status == 201
    await desk.settled()
    assert len(desk.comments()) == 1, "a command in the thread is not a comment"


async def test_sentinel_comments_reach_card_thread_once_without_echo(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """A comment made in Sentinel is posted once in the card's thread, naming its author;
    the comments Warden wrote (attribution, a reply from Teams) are never posted back."""
    desk = await open_desk(start_warden, arm, sentinel_comments_seconds=0.2)
    await desk.click(CardVerb.SEVERITY, {"severity": "Medium"})
    await desk.click(CardVerb.COMMENT, {"comment": "Typed in Teams"}, version=desk.version())
    await desk.settled()
    arm.portal_comment(desk.name, "Isolated the host from the portal", author="Megan Bowen")
    root = desk.warden.card_posts(desk.conversation)[0].result_id

    def thread_replies() -> list[str]:
        return [
            str(r.body)
            for r in desk.warden.connector.posts(f"{desk.conversation};messageid={root}")
            if r.status in (200, 201)
        ]

    await desk.warden.connector.wait_for(lambda s: thread_replies() or None, timeout=20)
    await asyncio.sleep(1.0)  # several relay rounds: nothing more may come
    replies = thread_replies()
    assert len(replies) == 1
    assert "Isolated the host from the portal" in replies[0]
    assert "Comment in Sentinel by Megan Bowen" in replies[0]


async def test_comment_from_older_card_still_added(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """A comment changes no field, so a card older than the incident may still add one."""
    desk = await open_desk(start_warden, arm)
    old = desk.version()
    await desk.warden.webhook(arm.portal_update(desk.name, severity="Low"))
    await desk.settled()
    await desk.click(CardVerb.COMMENT, {"comment": "Still looking"}, version=old)
    await desk.settled()
    assert "Still looking\n\n\u2014 Adele Vance via Teams" in desk.comments()


async def test_triage_data_not_an_object_gets_error_card(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """Action data of the wrong shape (a list) gets an error card, never a 500."""
    desk = await open_desk(start_warden, arm)
    activity = invoke_activity(
        desk.warden.connector.url, desk.conversation, CardVerb.SEVERITY.value, {}
    )
    activity["value"]["action"]["data"] = ["not", "an", "object"]
    response = await desk.warden.client.post("/api/messages", json=activity)
    assert response.status == 200
    body = await response.json()
    assert "unexpected" in str(body["value"]) or "out of date" in str(body["value"])
    assert not await desk.triage_jobs()
