# ruff: noqa: F811  (the graph fixture imported from test_evidence_personal is a parameter)
"""An evidence card exists once in its channel, even when Teams' answer to its post is lost.

The running Warden (real app, real botbuilder, real msgraph-sdk) asks for evidence in a team
channel; the owner hands in from their personal chat, which brings the reviewers' card to
the channel. Teams is the connector sandbox; Graph is the Graph sandbox, which serves the
directory, personal chats and the channel's messages from the connector's record (read back
to find a card whose post went unanswered).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from app import WORKER
from bot.marked_posts import POST_MARKER_PREFIX
from cards.verbs import CardVerb
from core.evidence import RequestStatus
from core.store import dlq, outbox
from core.store import evidence_cards as cards_store
from core.store.card_sends import card_sends
from core.store.evidence_cards import EVIDENCE_CARD_JOB, CardRole
from sandbox.arm import ArmSandbox
from sandbox.connector_faults import Fault
from sandbox.connector_records import StoredActivity
from sandbox.graph import GraphSandbox
from tests.integration.conftest import WardenFactory
from tests.integration.test_evidence_chat import Room, text_of
from tests.integration.test_evidence_personal import (  # noqa: F401  (fixture)
    CATALOG,
    CHANNEL,
    CHAT,
    OWNER,
    RITA,
    Desk,
    graph,
    only_request,
    open_desk,
)

REVIEWING = "Evidence to review: "
REQUESTED = "Evidence requested: "
TO_CHANNEL = f"{CHANNEL}/activities"
TO_CHAT = f"{CHAT}/activities"


@pytest.fixture
async def desk(
    start_warden: WardenFactory, arm: ArmSandbox, graph: GraphSandbox, tmp_path: Path
) -> Desk:
    """Warden with personal chats and the right to read its channels' messages back; the
    Graph sandbox serves those messages from the connector's record."""
    desk = await open_desk(
        start_warden, arm, graph, tmp_path, CATALOG, roles=["ChannelMessage.Read.Group"]
    )
    graph.channels = desk.warden.connector
    return desk


def cards_in(desk: Desk, conversation: str, heading: str) -> list[StoredActivity]:
    """The cards with ``heading`` that ``conversation`` holds, whatever their posts' answers."""
    return [
        a
        for a in desk.warden.connector.activities(conversation)
        if heading in str(a.body) and not a.reply_to_id
    ]


def posts_of(desk: Desk, conversation: str, heading: str) -> list[Any]:
    """The connector's log of posts of cards with ``heading``, answered or not."""
    return [p for p in desk.warden.connector.posts(conversation) if heading in str(p.body)]


def content(activity: StoredActivity) -> dict[str, Any]:
    """The card an activity carries."""
    found: dict[str, Any] = activity.body["attachments"][0]["content"]
    return found


def marker(activity: StoredActivity) -> str | None:
    """The post marker a card carries in its hidden element, or None."""
    ids = [str(block.get("id", "")) for block in content(activity).get("body", [])]
    return next((i for i in ids if i.startswith(POST_MARKER_PREFIX)), None)


async def in_flight(desk: Desk) -> int:
    """How many card posts the store holds as started and unanswered."""
    async with desk.store.reading() as conn:
        return len((await conn.execute(card_sends.select())).all())


async def lookups(desk: Desk) -> dict[str, float]:
    """``warden_delivery_ambiguous_total`` by resolution: posts whose answer was lost."""
    text = await (await desk.warden.client.get("/metrics")).text()
    pattern = r'^warden_delivery_ambiguous_total\{resolution="(\w+)"\} (\S+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, text, re.MULTILINE)}


async def handed_in(desk: Desk) -> str:
    """Evidence asked of the owner in the channel, their card in their personal chat, and
    handed in from there (which brings the reviewers' card to the channel); the request id."""
    await desk.say(f"request evidence ISO-A.5.15 from {OWNER['aadObjectId']}")
    [card] = cards_in(desk, CHAT, REQUESTED)
    await desk.hand_in(OWNER, content(card))
    return str((await only_request(desk)).id)


async def recorded(desk: Desk, request_id: str) -> str | None:
    """The activity id Warden recorded for the reviewers' card in the channel."""
    posted = await cards_store.posted(desk.store, request_id, CardRole.REVIEWERS, CHANNEL)
    return None if posted is None else posted.activity_id


async def test_reviewers_card_answer_lost_retry_adopts_it_and_updates_it_later(desk: Desk) -> None:
    """Teams stores the reviewers' card but the connection closes before its answer: the
    retried job finds the card in the channel through Graph and records it; Rita's approval
    then updates that card, and the channel never holds a second one."""
    desk.warden.connector.add_fault(Fault(drop_after=True, method="POST", path=TO_CHANNEL))
    request_id = await handed_in(desk)
    [card] = cards_in(desk, CHANNEL, REVIEWING)
    assert [p.fault for p in posts_of(desk, CHANNEL, REVIEWING)] == ["cut"]
    assert await recorded(desk, request_id) == card.id
    assert await in_flight(desk) == 0
    assert await lookups(desk) == {"found": 1.0}

    await Room(desk.warden, CHANNEL).click(CardVerb.EVIDENCE_APPROVE, RITA, card=content(card))
    assert (await only_request(desk)).status is RequestStatus.APPROVED
    [shown] = cards_in(desk, CHANNEL, REVIEWING)
    assert shown.id == card.id
    assert "Approved by Rita Reviewer" in text_of(content(shown))
    assert len(posts_of(desk, CHANNEL, REVIEWING)) == 1


async def test_reviewers_card_post_refused_leaves_nothing_in_flight(desk: Desk) -> None:
    """Teams refuses the reviewers' card (400): no card, no post left in flight, the job set
    aside; its replay posts the card at once, without looking for an earlier one."""
    desk.warden.connector.add_fault(Fault(status=400, method="POST", path=TO_CHANNEL))
    request_id = await handed_in(desk)
    assert cards_in(desk, CHANNEL, REVIEWING) == []
    assert await in_flight(desk) == 0
    assert await recorded(desk, request_id) is None
    [held] = [
        job
        for job in await outbox.list_jobs(desk.store, outbox.QUARANTINED, limit=10)
        if job.kind == EVIDENCE_CARD_JOB
    ]
    assert await dlq.replay(desk.store, held.id, actor="operator@contoso.com")
    desk.warden.client.app[WORKER].wake()
    await desk.settled()
    [card] = cards_in(desk, CHANNEL, REVIEWING)
    assert [p.status for p in posts_of(desk, CHANNEL, REVIEWING)] == [400, 201]
    assert await recorded(desk, request_id) == card.id
    assert await in_flight(desk) == 0
    assert await lookups(desk) == {}


async def test_reviewers_card_post_403_marks_the_channel_inactive(desk: Desk) -> None:
    """Teams answers the reviewers' card with 403 (the bot was removed from the team): no
    card, no post left in flight, the channel marked inactive as an incident card's 403 marks
    it, and the job done rather than set aside for an operator."""
    desk.warden.connector.add_fault(Fault(status=403, method="POST", path=TO_CHANNEL))
    request_id = await handed_in(desk)
    assert cards_in(desk, CHANNEL, REVIEWING) == []
    assert [p.status for p in posts_of(desk, CHANNEL, REVIEWING)] == [403]
    assert await in_flight(desk) == 0
    assert await recorded(desk, request_id) is None
    conversation = await desk.store.conversation(CHANNEL)
    assert conversation is not None and not conversation.active
    jobs = await outbox.list_jobs(desk.store, limit=50)
    assert [j.status for j in jobs if j.kind == EVIDENCE_CARD_JOB and j.status != outbox.DONE] == []


async def test_reviewers_card_posted_once_carrying_its_marker(desk: Desk) -> None:
    """The ordinary path: one post, answered; the card carries its post's marker and is
    recorded, with nothing left in flight and nothing looked up."""
    request_id = await handed_in(desk)
    [card] = cards_in(desk, CHANNEL, REVIEWING)
    assert marker(card) is not None
    assert [p.status for p in posts_of(desk, CHANNEL, REVIEWING)] == [201]
    assert await recorded(desk, request_id) == card.id
    assert await in_flight(desk) == 0
    assert await lookups(desk) == {}


async def test_owner_card_answer_lost_in_personal_chat_is_posted_again(desk: Desk) -> None:
    """A personal chat cannot be read back through channel messages: the owner's card whose
    answer was lost is posted again (the chat shows it twice, the second one recorded) and
    the lookup counts as unknown."""
    desk.warden.connector.add_fault(Fault(drop_after=True, method="POST", path=TO_CHAT))
    await desk.say(f"request evidence ISO-A.5.15 from {OWNER['aadObjectId']}")
    first, second = cards_in(desk, CHAT, REQUESTED)
    assert marker(first) == marker(second) is not None  # one marker for every post of it
    request = await only_request(desk)
    posted = await cards_store.posted(desk.store, request.id, CardRole.OWNER, CHAT)
    assert posted is not None and posted.activity_id == second.id
    assert await in_flight(desk) == 0
    assert await lookups(desk) == {"unknown": 1.0}
