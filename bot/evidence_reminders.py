"""Evidence reminders and escalations: a leader-run round, and the outbox job posting them.

Each round (``WARDEN_EVIDENCE_REMINDER_SECONDS``, on one replica) takes every request still
waiting for evidence, asks ``core.evidence_reminders.due_now`` which reminder is due, and
records it with ``core.store.evidence_reminders.record``: the reminder's unique row, its
audit entries (``reminded``; ``escalated`` when overdue) and its ``evidence.reminder`` jobs,
in one transaction. The job posts the card in the thread of the owner's card.

The post goes out as incident cards do (``bot.marked_posts``): committed as started with a
marker the card carries, then recorded (``core.store.evidence_reminders.record_posted``). A
job run again after its card was posted posts nothing; one run again after Teams accepted
the card but before its answer was recorded (Warden stopped, the connection broke) finds the
card among the thread's replies through Graph and records it instead of posting it again. A
403 (the bot was removed) marks the conversation inactive, as for incident cards.

Overdue evidence is escalated to the requirement's escalation channel when it names one,
else to the owner's manager (Graph ``users/{id}/manager``, mentioned in the owner's
conversation), else to the escalation user; with none of these the escalation is logged
and audited as "no one to escalate to".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from bot.delivery import CardSender
from bot.marked_posts import AmbiguousPosts, post_once
from bot.types import Card
from cards.evidence import escalation_card, reminder_card
from core.audit_chain import AuditAction, AuditDraft
from core.catalog import Catalog, PrincipalKind, Requirement
from core.errors import DeliveryError, Outcome
from core.evidence import WARDEN, EvidenceRequest, RequestStatus
from core.evidence_reminders import (
    Manager,
    ManagerLookupUnavailable,
    Reminder,
    ReminderKind,
    due_now,
)
from core.store import evidence as evidence_store
from core.store import evidence_cards as cards_store
from core.store import evidence_reminders as reminders_store
from core.store.evidence_audit import FollowUp
from core.store.evidence_reminders import REMINDER_JOB, OwnerCard
from core.store.outbox import Job
from core.store.store import Store

log = logging.getLogger(__name__)

LEADER_NAME = "evidence-reminders"
"""The leadership name: one replica at a time sends evidence reminders."""

NO_ONE = "no one to escalate to"

_WAITING = (RequestStatus.OPEN, RequestStatus.CHANGES_REQUESTED)


class ManagerLookup(Protocol):
    """Who a user reports to (``graph.managers.Managers``)."""

    async def manager_of(self, user: str) -> Manager | None:
        """The user's manager, or None; raises ``ManagerLookupUnavailable``."""
        ...


@dataclass
class RoundReport:
    """What one round did: reminders recorded, escalations among them, requests skipped."""

    reminded: int = 0
    escalated: int = 0
    skipped: int = 0


class EvidenceReminders:
    """Records the reminders and escalations due, each once."""

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        *,
        managers: ManagerLookup | None = None,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        """``managers`` None: no Graph, so overdue evidence goes to the catalog's
        escalation target only; ``on_change`` is called after a round that recorded any."""
        self._store = store
        self._catalog = catalog
        self._managers = managers
        self._today = today
        self._on_change = on_change

    async def run_once(self, today: date | None = None) -> RoundReport:
        """One round as of ``today`` (default: the UTC date now); what it did."""
        day = today or self._today()
        report = RoundReport()
        for status in _WAITING:
            for request in await evidence_store.list_requests(self._store, status=status):
                await self._remind(request, day, report)
        if report.reminded:
            self._on_change()
        log.info(
            "evidence reminder round: %d reminded, %d escalated, %d skipped",
            report.reminded,
            report.escalated,
            report.skipped,
        )
        return report

    async def _remind(self, request: EvidenceRequest, day: date, report: RoundReport) -> None:
        """Record the reminder due for ``request`` today, if any and not recorded yet."""
        requirement = self._catalog.get(request.requirement_id)
        if requirement is None:
            return
        reminder = due_now(request, requirement.reminders, day)
        if reminder is None or await self._recorded(reminder):
            return
        card = await reminders_store.owner_card(self._store, request.id)
        if card is None:
            log.info("evidence request %s has no owner's card to remind in yet", request.id)
            report.skipped += 1
            return
        wording = reminder.wording(day)
        details: dict[str, Any] = {"kind": reminder.kind.value, "day": reminder.day.isoformat()}
        audit = [_draft(request, AuditAction.REMINDED, {**details, "wording": wording})]
        jobs = [_job(reminder, card.conversation_id, card.activity_id, wording=wording)]
        if reminder.kind is ReminderKind.OVERDUE:
            try:
                target, job = await self._escalation(reminder, request, requirement, card)
            except ManagerLookupUnavailable:
                report.skipped += 1  # the next round asks again
                return
            audit.append(_draft(request, AuditAction.ESCALATED, {**details, "to": target}))
            jobs += [job] if job is not None else []
        if await reminders_store.record(self._store, reminder, audit, jobs):
            report.reminded += 1
            report.escalated += reminder.kind is ReminderKind.OVERDUE

    async def _recorded(self, reminder: Reminder) -> bool:
        done = await reminders_store.recorded(self._store, reminder.request_id)
        return (reminder.kind.value, reminder.day.isoformat()) in done

    async def _escalation(
        self,
        reminder: Reminder,
        request: EvidenceRequest,
        requirement: Requirement,
        card: OwnerCard,
    ) -> tuple[str | None, FollowUp | None]:
        """Whom overdue ``request`` goes to (for the audit) and the job that tells them."""
        target = requirement.escalation
        if target is not None and target.kind is PrincipalKind.CHANNEL:
            if await self._store.conversation(target.id) is not None:
                return target.id, _job(reminder, target.id, None, escalate=True)
            log.warning("the escalation channel of %s is unknown to Warden", requirement.id)
        manager = None
        if self._managers is not None:
            manager = await self._managers.manager_of(request.owner)
        if manager is None and target is not None and target.kind is PrincipalKind.USER:
            manager = Manager(target.id, target.id)
        if manager is None:
            log.warning("evidence request %s is overdue and there is %s", request.id, NO_ONE)
            return None, None
        job = _job(reminder, card.conversation_id, card.activity_id, escalate=True)
        job.payload["manager"] = {"id": manager.id, "name": manager.name}
        return manager.id, job


def _draft(request: EvidenceRequest, action: AuditAction, details: dict[str, Any]) -> AuditDraft:
    """An audit draft by Warden about ``request``."""
    if action is AuditAction.ESCALATED and details.get("to") is None:
        details = {**details, "note": NO_ONE}
    return AuditDraft(
        actor=WARDEN,
        action=action,
        request_id=request.id,
        requirement_id=request.requirement_id,
        details=details,
    )


def _job(
    reminder: Reminder,
    conversation_id: str,
    thread: str | None,
    *,
    wording: str = "overdue",
    escalate: bool = False,
) -> FollowUp:
    """The ``evidence.reminder`` job posting one card of ``reminder`` (after the request's
    card jobs)."""
    request_id = reminder.request_id
    payload: dict[str, Any] = {
        "request": request_id,
        "kind": reminder.kind.value,
        "day": reminder.day.isoformat(),
        "conversation_id": conversation_id,
        "thread": thread,
        "wording": wording,
        "escalation": escalate,
    }
    ordering = f"evidence|{request_id}|{conversation_id}"
    return FollowUp(REMINDER_JOB, ordering, payload, conversation_id=conversation_id)


class ReminderDelivery:
    """Runs ``evidence.reminder`` jobs: the card, in the owner's card's thread when given;
    ``ambiguous`` reads that thread back for a card whose post's answer was lost."""

    def __init__(
        self,
        store: Store,
        sender: CardSender,
        catalog: Catalog,
        ambiguous: AmbiguousPosts | None = None,
    ) -> None:
        self._store = store
        self._sender = sender
        self._catalog = catalog
        self._ambiguous = ambiguous or AmbiguousPosts(None, None)

    async def __call__(self, job: Job) -> None:
        """Post the job's reminder or escalation card once, unless the evidence came
        meanwhile or the card was posted already."""
        payload = job.payload
        request = await evidence_store.get(self._store, str(payload.get("request")))
        conversation = await self._store.conversation(str(payload.get("conversation_id")))
        if request is None or conversation is None:
            raise DeliveryError("request or conversation no longer stored", outcome=Outcome.FAIL)
        requirement = self._catalog.get(request.requirement_id)
        if requirement is None:
            raise DeliveryError("the requirement left the catalog", outcome=Outcome.FAIL)
        if not conversation.active or not request.status.awaiting_evidence:
            log.info("outbox job %s skipped: no longer needed or possible", job.id)
            return
        key, here = post_key(job), conversation.ref.conversation_id
        if await reminders_store.posted(self._store, key, here) is not None:
            log.info("outbox job %s skipped: its card was posted already", job.id)
            return
        card = await self._card(request, requirement, payload)
        thread = payload.get("thread")
        thread = thread if isinstance(thread, str) and thread else None
        found = await post_once(
            self._store,
            self._sender,
            self._ambiguous,
            conversation.ref,
            key,
            card,
            REMINDER_VERSION,
            job=job,
            thread=thread,
        )
        if found is not None:
            await reminders_store.record_posted(self._store, request.id, key, here, found, job)

    async def _card(
        self, request: EvidenceRequest, requirement: Requirement, payload: dict[str, Any]
    ) -> Card:
        """The job's reminder card, or its escalation card."""
        names = await cards_store.names_of(self._store, [request.owner])
        if not payload.get("escalation"):
            return reminder_card(request, requirement, names, str(payload.get("wording")))
        manager = payload.get("manager")
        boss = (str(manager["id"]), str(manager["name"])) if isinstance(manager, dict) else None
        return escalation_card(request, requirement, names, boss)


REMINDER_VERSION = "reminder"
"""The version a started reminder post records: a reminder card is never updated."""


def post_key(job: Job) -> str:
    """The key of a job's card among posts in flight and posted reminders: ``reminder:``, the
    request, the reminder's kind and day, and the card (reminder or escalation); the same
    however often the job runs (a job without kind and day, made before they were kept, is
    known by its id)."""
    payload = job.payload
    kind, day = payload.get("kind"), payload.get("day")
    if not isinstance(kind, str) or not isinstance(day, str):
        return f"reminder:job:{job.id}"
    card = "escalation" if payload.get("escalation") else "reminder"
    return f"reminder:{payload.get('request')}:{kind}:{day}:{card}"
