"""Evidence reminders and escalation: before due, on the due date, overdue, each once.

The real app asks for evidence in a channel (its owner's card posted to the connector
sandbox), then reminder rounds run with an injected date; the owner's manager comes from the
ARM sandbox's Graph ``users/{id}/manager``. Counting what the connector received shows each
reminder sent once across repeated rounds, a restart and concurrent rounds.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from app import REMINDERS, STORE, WORKER
from core.audit_chain import AuditAction, verify
from core.catalog import EvidenceKind
from core.evidence import DecisionKind, Evidence, RequestStatus, Verdict
from core.store import evidence as evidence_store
from core.store import evidence_audit, outbox
from core.store.evidence_reminders import REMINDER_JOB
from sandbox.arm import ArmSandbox
from tests.integration.conftest import Warden, WardenFactory
from tests.integration.triage_support import connected_settings
from tests.support import channel_id, message_activity

REVIEWERS = "6f4c1b3e-2a8d-4b9e-9c1a-0d2e3f4a5b6c"
CATALOG = f"""\
requirements:
  - id: ISO-A.5.15
    title: Access reviews of privileged roles
    guidance: Show the latest quarterly access review.
    evidence: [attestation]
    owner: owner@contoso.com
    reviewers: ["{REVIEWERS}"]
    due_days: 30
    reminders: [7, 1]
"""
OWNER = {
    "id": "29:olivia",
    "name": "Olivia Owner",
    "aadObjectId": "0a0a0a0a-0000-4000-8000-0000000000aa",
}
ASKER = {
    "id": "29:adele",
    "name": "Adele Vance",
    "aadObjectId": "2046feea-040d-4a46-9e2b-91c2941bfa70",
}
CHANNEL = channel_id("compliance")


class Desk:
    """One running Warden with an evidence request open in the compliance channel."""

    def __init__(self, warden: Warden) -> None:
        self.warden = warden

    async def round(self, today: date) -> None:
        """Run one reminder round as of ``today`` and wait until its cards are posted."""
        app = self.warden.client.app
        await app[REMINDERS].run_once(today)
        await self.settled()

    async def settled(self) -> None:
        app = self.warden.client.app

        async def idle() -> bool:  # audit.mirror jobs wait for SharePoint, not configured
            jobs = await outbox.list_jobs(app[STORE], outbox.UNFINISHED)
            return not [job for job in jobs if job.kind != "audit.mirror"]

        # two replicas' workers share the jobs and their connector's pacing: room for a
        # loaded machine (a 429 pauses the conversation for the seconds it asks)
        await app[WORKER].wait_until(idle, within=30)

    def sent(self, heading: str) -> list[Any]:
        """Cards posted with ``heading`` (reminders and escalations), oldest first."""
        return [
            r
            for r in self.warden.connector.posts(successful=True)
            if heading in str(r.body.get("attachments", ""))
        ]


async def open_desk(start_warden: WardenFactory, arm: ArmSandbox, tmp_path: Path) -> Desk:
    """Warden connected to the ARM sandbox, a request open for Olivia (manager: Megan)."""
    arm.add_user("Olivia Owner", "olivia@contoso.com", object_id=OWNER["aadObjectId"])
    arm.add_user(
        "Megan Bowen", "megan@contoso.com", object_id="0d0d0d0d-0000-4000-8000-00000000000d"
    )
    arm.directory.set_manager(OWNER["aadObjectId"], "megan@contoso.com")
    arm.set_member_groups(ASKER["aadObjectId"], [REVIEWERS])
    desk = Desk(await start_warden(**warden_settings(arm, tmp_path)))
    await desk.warden.install(CHANNEL)
    activity = message_activity(
        desk.warden.connector.url,
        CHANNEL,
        f"request evidence ISO-A.5.15 from {OWNER['aadObjectId']}",
    )
    activity["from"] = ASKER
    response = await desk.warden.client.post("/api/messages", json=activity)
    assert response.status in (200, 201), await response.text()
    await desk.settled()
    assert desk.sent("Evidence requested: "), "the owner's card was not posted"
    return desk


def warden_settings(arm: ArmSandbox, tmp_path: Path) -> dict[str, Any]:
    catalog = tmp_path / "requirements.yaml"
    catalog.write_text(CATALOG, encoding="utf-8")
    return connected_settings(
        arm, requirements_file=catalog, evidence_reminder_seconds=0, responder_cache_seconds=0
    )


async def due_date(desk: Desk) -> date:
    (request,) = await evidence_store.list_requests(desk.warden.client.app[STORE])
    return request.due


async def test_reminders_before_on_and_after_due_each_once_across_rounds_and_restart(
    start_warden: WardenFactory, arm: ArmSandbox, tmp_path: Path
) -> None:
    """7 and 1 days before, due today, overdue + escalation to the manager: each sent once,
    in the thread of the owner's card, however many rounds run and after a restart."""
    desk = await open_desk(start_warden, arm, tmp_path)
    due = await due_date(desk)
    owner_card = desk.sent("Evidence requested: ")[0]
    for day in (due - timedelta(days=8), due - timedelta(days=7), due - timedelta(days=7)):
        await desk.round(day)
    reminders = desk.sent("Reminder: evidence")
    assert len(reminders) == 1
    assert "due in 7 days" in str(reminders[0].body)
    assert reminders[0].conversation_id == f"{CHANNEL};messageid={owner_card.result_id}"
    mention = reminders[0].body["attachments"][0]["content"]["msteams"]["entities"][0]
    assert mention["mentioned"]["id"] == OWNER["aadObjectId"]
    for day in (due - timedelta(days=1), due, due + timedelta(days=1), due + timedelta(days=2)):
        await desk.round(day)
        await desk.round(day)
    texts = [str(r.body) for r in desk.sent("Reminder: evidence")]
    assert len(texts) == 4
    assert ["due tomorrow" in texts[1], "due today" in texts[2], "overdue" in texts[3]] == [
        True
    ] * 3
    (escalation,) = desk.sent("Overdue evidence")
    assert "<at>Megan Bowen</at>" in str(escalation.body)
    mentioned = [
        e["mentioned"]["id"]
        for e in escalation.body["attachments"][0]["content"]["msteams"]["entities"]
    ]
    assert mentioned[0] == "0d0d0d0d-0000-4000-8000-00000000000d"
    await desk.warden.client.close()  # a restart: the same database, a new process
    again = Desk(await start_warden(**warden_settings(arm, tmp_path)))
    await again.round(due + timedelta(days=1))
    await again.round(due + timedelta(days=3))
    assert len(again.sent("Reminder: evidence")) == 4
    assert len(again.sent("Overdue evidence")) == 1
    chain = await evidence_audit.audit_entries(again.warden.client.app[STORE])
    actions = [e.action for e in chain]
    assert actions.count(AuditAction.REMINDED) == 4
    assert actions.count(AuditAction.ESCALATED) == 1
    assert verify(chain).ok


async def test_request_approved_before_due_gets_no_reminder(
    start_warden: WardenFactory, arm: ArmSandbox, tmp_path: Path
) -> None:
    """A request no longer waiting for evidence is never reminded."""
    desk = await open_desk(start_warden, arm, tmp_path)
    due = await due_date(desk)
    store = desk.warden.client.app[STORE]
    (request,) = await evidence_store.list_requests(store)
    handed_in = await evidence_store.submit(
        store,
        request.id,
        Evidence(kind=EvidenceKind.ATTESTATION, text="Reviewed on 2026-10-02."),
        OWNER["aadObjectId"],
        seen=request.version,
    )
    decided = await evidence_store.decide(
        store,
        request.id,
        Verdict(kind=DecisionKind.APPROVE),
        ASKER["aadObjectId"],
        seen=handed_in.request.version,
    )
    assert decided.request.status is RequestStatus.APPROVED
    for day in (due - timedelta(days=7), due, due + timedelta(days=1)):
        await desk.round(day)
    assert desk.sent("Reminder: evidence") == []
    assert desk.sent("Overdue evidence") == []


async def test_two_concurrent_rounds_send_one_reminder(
    start_warden: WardenFactory, arm: ArmSandbox, tmp_path: Path
) -> None:
    """Rounds running at once (two replicas on PostgreSQL; SQLite has one) send it once."""
    desk = await open_desk(start_warden, arm, tmp_path)
    desks = [desk]
    if desk.warden.settings.effective_database_url.startswith("postgresql"):
        desks.append(Desk(await start_warden(**warden_settings(arm, tmp_path))))
    due = await due_date(desk)
    apps = [d.warden.client.app for d in desks]
    await asyncio.gather(*(app[REMINDERS].run_once(due) for app in apps for _ in range(2)))
    for each in desks:
        await each.settled()
    assert len(desk.sent("Reminder: evidence")) == 1


async def test_missed_week_sends_only_the_latest_reminder(
    start_warden: WardenFactory, arm: ArmSandbox, tmp_path: Path
) -> None:
    """Warden down from 8 days before until 2 days after: only "overdue" is sent, once."""
    desk = await open_desk(start_warden, arm, tmp_path)
    due = await due_date(desk)
    await desk.round(due - timedelta(days=8))
    await desk.round(due + timedelta(days=2))
    await desk.round(due + timedelta(days=3))
    (reminder,) = desk.sent("Reminder: evidence")
    assert "overdue" in str(reminder.body)
    assert len(desk.sent("Overdue evidence")) == 1
    jobs = [
        j for j in await outbox.list_jobs(desk.warden.client.app[STORE]) if j.kind == REMINDER_JOB
    ]
    assert len(jobs) == 2
