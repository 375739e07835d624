"""A Teams activity delivered twice (a retry, a replay) is acted on once."""

from __future__ import annotations

import asyncio

from cards.verbs import CardVerb
from sandbox.arm import ArmSandbox
from tests.integration.conftest import Warden, WardenFactory
from tests.integration.triage_support import open_desk
from tests.support import channel_id, invoke_activity, message_activity


async def test_message_delivered_twice_answered_once(warden: Warden) -> None:
    """The same ``help`` message (same id) twice: one reply in the channel; the second
    delivery is acknowledged with 200 and nothing posted."""
    conversation = channel_id("receipts")
    await warden.install(conversation)
    activity = message_activity(warden.connector.url, conversation, "help")
    first = await warden.client.post("/api/messages", json=activity)
    posts = len(warden.connector.posts(conversation))
    again = await warden.client.post("/api/messages", json=activity)
    assert first.status == 201
    assert again.status == 200
    assert len(warden.connector.posts(conversation)) == posts


async def test_message_whose_reply_failed_acted_on_when_redelivered(warden: Warden) -> None:
    """A reply that could not be delivered (502) leaves no receipt: Teams' retry of the same
    activity is answered."""
    conversation = channel_id("retry")
    await warden.install(conversation)
    activity = message_activity(warden.connector.url, conversation, "help")
    warden.connector.set_down(True)
    failed = await warden.client.post("/api/messages", json=activity)
    warden.connector.set_down(False)
    retried = await warden.client.post("/api/messages", json=activity)
    assert failed.status == 502
    assert retried.status == 201
    assert warden.connector.posts(conversation, successful=True)[-1].body["attachments"]


async def test_card_click_delivered_twice_comments_once(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """The same *Comment* click twice: one comment in Sentinel; the repeat is answered with
    a message that it was already done."""
    desk = await open_desk(start_warden, arm)
    data = {"incident": desk.key, "version": desk.version(), "comment": "Checked the VPN logs"}
    activity = invoke_activity(
        desk.warden.connector.url, desk.conversation, CardVerb.COMMENT.value, data
    )
    activity["id"] = "f:click-1"
    first = await desk.warden.client.post("/api/messages", json=activity)
    await desk.settled()
    again = await desk.warden.client.post("/api/messages", json=activity)
    await desk.settled()
    assert first.status == again.status == 200
    assert (await again.json())["value"] == "This was already done."
    assert sum("Checked the VPN logs" in c for c in desk.comments()) == 1


async def test_same_message_delivered_at_once_many_times_answered_once(warden: Warden) -> None:
    """Five deliveries of one ``help`` message at the same moment (their receipts go in one
    transaction): one is acted on (201), the others acknowledged (200); one reply posted."""
    conversation = channel_id("burst")
    await warden.install(conversation)
    activity = message_activity(warden.connector.url, conversation, "help")
    before = len(warden.connector.posts())
    answers = await asyncio.gather(
        *(warden.client.post("/api/messages", json=activity) for _ in range(5))
    )
    assert sorted(a.status for a in answers) == [200, 200, 200, 200, 201]
    assert len(warden.connector.posts()) == before + 1
