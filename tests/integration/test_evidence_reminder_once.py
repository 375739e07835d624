# ruff: noqa: F811  (the graph fixture imported from test_evidence_personal is a parameter)
"""An evidence reminder exists once in the thread of the owner's card, even when Teams'
answer to its post is lost: the running Warden (real app, real botbuilder, real msgraph-sdk)
against the Connector sandbox, and the Graph sandbox serving the channel's messages and
their replies from the connector's record (read back to find a reminder whose post went
unanswered).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app import REMINDERS, WORKER
from core.store import evidence_reminders as reminders_store
from core.store import outbox
from core.store.evidence_reminders import REMINDER_JOB
from sandbox.arm import ArmSandbox
from sandbox.connector_faults import Fault
from sandbox.connector_records import StoredActivity
from sandbox.graph import GraphSandbox
from tests.integration.conftest import WardenFactory
from tests.integration.test_evidence_card_once import in_flight, lookups, marker
from tests.integration.test_evidence_personal import (  # noqa: F401  (fixture)
    CATALOG,
    CHANNEL,
    OWNER,
    Desk,
    graph,
    only_request,
    open_desk,
)

REMINDER = "Reminder: evidence"


@pytest.fixture
async def desk(
    start_warden: WardenFactory, arm: ArmSandbox, graph: GraphSandbox, tmp_path: Path
) -> Desk:
    """Warden asked for evidence in the channel, the owner's card posted there (the tenant
    blocks personal installs), with the right to read its channels' messages back; the
    Graph sandbox serves those messages and their replies from the connector's record."""
    desk = await open_desk(
        start_warden, arm, graph, tmp_path, CATALOG, roles=["ChannelMessage.Read.Group"]
    )
    graph.channels = desk.warden.connector
    graph.teamwork.block_installs = True
    await desk.say(f"request evidence ISO-A.5.15 from {OWNER['aadObjectId']}")
    return desk


def owner_card(desk: Desk) -> StoredActivity:
    """The owner's card in the channel, the reminders' thread root."""
    [card] = [
        a
        for a in desk.warden.connector.activities(CHANNEL)
        if "Evidence requested: " in str(a.body) and not a.reply_to_id
    ]
    return card


def thread_of(desk: Desk) -> str:
    """The conversation id of the owner's card's thread."""
    return f"{CHANNEL};messageid={owner_card(desk).id}"


def reminders(desk: Desk) -> list[StoredActivity]:
    """The reminders the owner's card's thread holds, whatever their posts' answers."""
    return [a for a in desk.warden.connector.activities(thread_of(desk)) if REMINDER in str(a.body)]


def reminder_posts(desk: Desk) -> list[Any]:
    """The connector's log of reminder posts, answered or not."""
    return [p for p in desk.warden.connector.posts(thread_of(desk)) if REMINDER in str(p.body)]


async def remind(desk: Desk, *statuses: str) -> None:
    """Run the reminder round on the due date, and wait until its job has one of
    ``statuses``."""
    app = desk.warden.client.app
    request = await only_request(desk)
    await app[REMINDERS].run_once(request.due)

    async def reached() -> bool:
        jobs = await outbox.list_jobs(desk.store, limit=50)
        return any(job.kind == REMINDER_JOB and job.status in statuses for job in jobs)

    await app[WORKER].wait_until(reached, within=30)


async def recorded(desk: Desk) -> list[str]:
    """The activity ids Warden recorded for the request's reminder posts."""
    request = await only_request(desk)
    return [post.activity_id for post in await reminders_store.posts(desk.store, request.id)]


async def test_reminder_answer_lost_retry_adopts_it_from_the_thread_not_a_second(
    desk: Desk,
) -> None:
    """Teams stores the reminder in the owner's card's thread but the connection closes
    before its answer: the retried job finds it among the thread's replies through Graph and
    records it; the thread holds one reminder."""
    desk.warden.connector.add_fault(Fault(drop_after=True, method="POST", path="/activities"))
    await remind(desk, outbox.DONE)
    [reminder] = reminders(desk)
    assert "due today" in str(reminder.body)
    assert [p.fault for p in reminder_posts(desk)] == ["cut"]  # posted once, never again
    assert await recorded(desk) == [reminder.id]
    assert await in_flight(desk) == 0
    assert await lookups(desk) == {"found": 1.0}
    assert [c.status for c in desk.graph.calls("ListChannelMessageReplies")] == [200]


async def test_reminder_posted_once_carrying_its_marker_and_recorded(desk: Desk) -> None:
    """The ordinary path: one post in the thread, answered; the reminder carries its post's
    marker and is recorded, with nothing left in flight and nothing looked up."""
    await remind(desk, outbox.DONE)
    [reminder] = reminders(desk)
    assert marker(reminder) is not None
    assert [p.status for p in reminder_posts(desk)] == [201]
    assert await recorded(desk) == [reminder.id]
    assert await in_flight(desk) == 0
    assert await lookups(desk) == {}


async def test_reminder_post_refused_403_leaves_nothing_in_flight_and_the_channel_inactive(
    desk: Desk,
) -> None:
    """Teams refuses the reminder with 403 (the bot was removed): no reminder, no post left
    in flight, and the channel marked inactive as an incident card's 403 marks it; the job
    is done, not set aside."""
    desk.warden.connector.add_fault(Fault(status=403, method="POST", path="/activities"))
    await remind(desk, outbox.DONE, *outbox.DLQ)
    assert reminders(desk) == []
    assert [p.status for p in reminder_posts(desk)] == [403]
    assert await in_flight(desk) == 0
    conversation = await desk.store.conversation(CHANNEL)
    assert conversation is not None and not conversation.active
    assert await recorded(desk) == []
    [job] = [j for j in await outbox.list_jobs(desk.store, limit=50) if j.kind == REMINDER_JOB]
    assert job.status == outbox.DONE
