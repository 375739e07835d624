"""Which evidence reminder is due: before the due date, on it, or once overdue (pure).

A request waiting for evidence (open, or changes requested) is reminded on each of its
requirement's ``reminders`` days before the due date, on the due date, and once the day
after it (overdue, which also escalates). Days are UTC dates. When several reminders fell due
since the last round (Warden was down), only the latest is sent, late, once: the store keys
each reminder by (request, kind, day), so the same reminder is never recorded twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from core.evidence_models import EvidenceRequest


class ReminderKind(StrEnum):
    """What a reminder says: due in N days, due today, or overdue."""

    BEFORE = "before"
    DUE = "due"
    OVERDUE = "overdue"


@dataclass(frozen=True)
class Reminder:
    """One reminder of a request: its kind and the day it is scheduled for."""

    request_id: str
    kind: ReminderKind
    day: date
    due: date

    def days_left(self, today: date) -> int:
        """Days from ``today`` to the due date (negative once overdue)."""
        return (self.due - today).days

    def wording(self, today: date) -> str:
        """``due in N days``, ``due today`` or ``overdue``, as of ``today``."""
        left = self.days_left(today)
        if left < 0:
            return "overdue"
        if left == 0:
            return "due today"
        return "due tomorrow" if left == 1 else f"due in {left} days"


def schedule(request: EvidenceRequest, days_before: Sequence[int]) -> list[Reminder]:
    """Every reminder of ``request``, earliest first; none scheduled before it was opened."""
    opened = request.created_at.date()
    days = [(ReminderKind.BEFORE, request.due - timedelta(days=n)) for n in days_before if n > 0]
    days += [
        (ReminderKind.DUE, request.due),
        (ReminderKind.OVERDUE, request.due + timedelta(days=1)),
    ]
    planned = [Reminder(request.id, kind, day, request.due) for kind, day in days if day >= opened]
    return sorted(planned, key=lambda reminder: reminder.day)


def due_now(request: EvidenceRequest, days_before: Sequence[int], today: date) -> Reminder | None:
    """The latest reminder of ``request`` due by ``today``, or None (nothing due, or the
    request no longer waits for evidence). Earlier ones it supersedes are never sent."""
    if not request.status.awaiting_evidence:
        return None
    passed = [r for r in schedule(request, days_before) if r.day <= today]
    return passed[-1] if passed else None


@dataclass(frozen=True)
class Manager:
    """Whom overdue evidence is escalated to: an Entra user id and display name."""

    id: str
    name: str


class ManagerLookupUnavailable(Exception):
    """The directory could not say who the manager is (throttled, down, refused)."""
