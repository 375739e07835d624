"""Evidence reminders in the store: each recorded once, with its audit entries and jobs.

``record`` writes, in one evidence transaction (serialised like every evidence write, see
``core.store.evidence``): the reminder's row in ``evidence_reminders``, whose primary key
(request, kind, day) refuses a second copy, the audit entries (``reminded``, and
``escalated`` when overdue) with their mirror jobs, and the outbox jobs that post the cards.
A second round, a restart or another replica finds the row and writes nothing.

Each card a job posts is recorded in ``evidence_reminder_posts`` (``record_posted``), in the
commit that forgets its post in flight (``core.store.card_sends``): a job run again after
its card was posted posts nothing, and one whose answer was lost adopts the card it finds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from core.audit_chain import AuditDraft
from core.evidence import Transition
from core.evidence_reminders import Reminder
from core.store import card_sends
from core.store.evidence import select_request
from core.store.evidence_audit import FollowUp, record_transition, serialise_writes
from core.store.evidence_cards import CardRole
from core.store.outbox import Job
from core.store.schema_evidence import (
    evidence_cards,
    evidence_reminder_posts,
    evidence_reminders,
    evidence_requests,
)
from core.store.store import Store

REMINDER_JOB = "evidence.reminder"
"""The outbox job kind that posts one reminder or escalation card.

Payload: ``{"request", "kind", "day", "conversation_id", "thread", "wording",
"escalation": bool, "manager"?}``; see ``bot.evidence_reminders``."""


@dataclass(frozen=True)
class ReminderPost:
    """A reminder or escalation card posted: its key, conversation and activity id."""

    post_key: str
    conversation_id: str
    activity_id: str


@dataclass(frozen=True)
class OwnerCard:
    """Where the owner's card of a request sits: its conversation and activity id."""

    conversation_id: str
    activity_id: str


async def owner_card(store: Store, request_id: str) -> OwnerCard | None:
    """The first posted owner's card of the request, or None when it has none yet."""
    stmt = (
        select(evidence_cards.c.conversation_id, evidence_cards.c.activity_id)
        .where(
            evidence_cards.c.request_id == request_id,
            evidence_cards.c.role == CardRole.OWNER.value,
        )
        .order_by(evidence_cards.c.posted_at)
        .limit(1)
    )
    async with store.reading() as conn:
        row = (await conn.execute(stmt)).first()
    return None if row is None else OwnerCard(row.conversation_id, row.activity_id)


async def record(
    store: Store,
    reminder: Reminder,
    audit: Sequence[AuditDraft],
    jobs: Sequence[FollowUp],
) -> bool:
    """Record ``reminder`` with its ``audit`` entries and ``jobs``; True when it was new.

    False (nothing written) when it was recorded before, or the request no longer waits for
    evidence (approved, say, since the round read it).
    """

    def write(conn: Connection, _: None) -> bool:
        serialise_writes(conn)
        request = select_request(conn, evidence_requests.c.id == reminder.request_id)
        if request is None or not request.status.awaiting_evidence:
            return False
        row = {
            "request_id": reminder.request_id,
            "kind": reminder.kind.value,
            "day": reminder.day.isoformat(),
            "sent_at": time.time(),
        }
        inserted = conn.execute(
            store.insert(evidence_reminders).values(**row).on_conflict_do_nothing()
        )
        if not inserted.rowcount:
            return False
        record_transition(conn, store, Transition(request=request, audit=tuple(audit)), jobs)
        return True

    return await store.run_write(write, None)


async def recorded(store: Store, request_id: str) -> list[tuple[str, str]]:
    """The (kind, ISO day) of every reminder recorded for the request, oldest day first."""
    stmt = (
        select(evidence_reminders.c.kind, evidence_reminders.c.day)
        .where(evidence_reminders.c.request_id == request_id)
        .order_by(evidence_reminders.c.day)
    )
    async with store.reading() as conn:
        return [(row.kind, row.day) for row in await conn.execute(stmt)]


async def posted(store: Store, post_key: str, conversation_id: str) -> str | None:
    """The activity id of the card posted for ``post_key`` in the conversation, or None."""
    stmt = select(evidence_reminder_posts.c.activity_id).where(
        evidence_reminder_posts.c.post_key == post_key,
        evidence_reminder_posts.c.conversation_id == conversation_id,
    )
    async with store.reading() as conn:
        found = (await conn.execute(stmt)).scalar()
    return None if found is None else str(found)


async def record_posted(
    store: Store, request_id: str, post_key: str, conversation_id: str, activity_id: str, job: Job
) -> None:
    """Record the card posted for ``post_key`` and, in the same commit, forget its post in
    flight; only while ``job``'s lease holds (``LeaseLost`` otherwise)."""
    row = {
        "post_key": post_key,
        "conversation_id": conversation_id,
        "request_id": request_id,
        "activity_id": activity_id,
        "posted_at": time.time(),
    }
    stmt = store.insert(evidence_reminder_posts).values(**row).on_conflict_do_nothing()
    await card_sends.record(store, stmt, (post_key, conversation_id), job=job)


async def posts(store: Store, request_id: str) -> list[ReminderPost]:
    """The reminder and escalation cards posted for the request, oldest first."""
    table = evidence_reminder_posts
    stmt = (
        select(table.c.post_key, table.c.conversation_id, table.c.activity_id)
        .where(table.c.request_id == request_id)
        .order_by(table.c.posted_at)
    )
    async with store.reading() as conn:
        return [ReminderPost(*row) for row in await conn.execute(stmt)]
