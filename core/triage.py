"""Triage from the card: what a responder asked of an incident, and what came of it.

A click on a triage button becomes a :class:`TriageChange` (vendor-neutral: the incident's
connector turns it into its own API call) recorded with an outbox job, so the invoke is
answered at once and the write to the incident's source runs, and is retried, from the
outbox. The card shows the newest :class:`TriageAction` of its incident for everyone: who
asked for what, and whether it is applying, waiting, applied, or was not applied and why.

``seen`` holds what the person saw on their card for the fields they change: the write is
applied only while those fields still hold what they saw, so two people changing the same
field at once never overwrite each other silently (the second is told, and nothing changes).
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.models import Incident, IncidentStatus, Owner, Severity
from core.roles import Grant

TRIAGE_JOB = "incident.triage"
"""The outbox job kind that writes a triage change to the incident's source."""

CLOSING_CHOICES: dict[str, tuple[str, str | None, str]] = {
    "TruePositive:SuspiciousActivity": (
        "TruePositive",
        "SuspiciousActivity",
        "True positive: suspicious activity",
    ),
    "BenignPositive:SuspiciousButExpected": (
        "BenignPositive",
        "SuspiciousButExpected",
        "Benign positive: suspicious but expected",
    ),
    "FalsePositive:IncorrectAlertLogic": (
        "FalsePositive",
        "IncorrectAlertLogic",
        "False positive: incorrect alert logic",
    ),
    "FalsePositive:InaccurateData": (
        "FalsePositive",
        "InaccurateData",
        "False positive: inaccurate data",
    ),
    "Undetermined": ("Undetermined", None, "Undetermined"),
}
"""The ways to close an incident, as Sentinel's portal offers them: value → (classification,
reason, label). A classification and its reason travel as one choice, so they always fit."""


class TriageState(StrEnum):
    """Where a triage action stands."""

    PENDING = "pending"
    """Recorded; the write has not run yet."""

    WAITING = "waiting"
    """The source is down or throttling; the write will be tried again."""

    APPLIED = "applied"
    """Written to the incident's source."""

    CONFLICT = "conflict"
    """Someone changed the same field first; nothing was written."""

    FAILED = "failed"
    """The source refused the change, or the retries ran out; nothing was written."""

    @property
    def final(self) -> bool:
        """True once nothing more will happen to the action."""
        return self in (TriageState.APPLIED, TriageState.CONFLICT, TriageState.FAILED)


class Actor(BaseModel):
    """The person who clicked, as the authenticated activity named them (never action data)."""

    model_config = ConfigDict(frozen=True)

    object_id: str = Field(min_length=1)
    name: str = ""
    allowed_by: Grant | None = None
    """The role grant that allowed the action (``core.roles``), recorded with it."""

    @property
    def display(self) -> str:
        """The name to show and to write in the attribution comment."""
        return self.name or "a Teams user"


class TriageChange(BaseModel):
    """One change a responder asked for; exactly the fields its ``kind`` needs are set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["assign", "severity", "status", "comment"]
    owner: Owner | None = None
    severity: Severity | None = None
    status: IncidentStatus | None = None
    classification: str | None = None
    reason: str | None = None
    comment: str | None = None
    seen: dict[str, str] = Field(default_factory=dict)
    """What the card showed for each changed field (``severity``, ``status``, ``owner``)."""

    def summary(self) -> str:
        """What was asked, in a few words: ``Severity High → Medium``."""
        seen = self.seen
        if self.kind == "assign":
            return f"Assigned to {(self.owner and self.owner.display) or 'the person picked'}"
        if self.kind == "severity" and self.severity is not None:
            return f"Severity {seen.get('severity', '?')} \u2192 {self.severity.value}"
        if self.kind == "status" and self.status is not None:
            text = f"Status {seen.get('status', '?')} \u2192 {self.status.value}"
            if self.status is IncidentStatus.CLOSED:
                text += f" ({closing_label(self.classification, self.reason)})"
            return text
        return "Comment"

    def conflict_with(self, current: Incident) -> str | None:
        """Why ``current`` no longer holds what the person saw, or ``None`` when it does."""
        now = observed(current)
        for field, was in self.seen.items():
            if now.get(field) != was:
                return f"{field} is now {now.get(field) or 'empty'} (the card showed {was})"
        return None


def observed(incident: Incident) -> dict[str, str]:
    """The fields triage compares, as the card shows them."""
    return {
        "severity": incident.severity.value,
        "status": incident.status.value,
        "owner": incident.owner.object_id or "",
    }


def attribution(action: TriageAction, owner: str | None = None) -> str:
    """The comment that says who did what: ``Severity High → Medium by Ada via Teams``.

    ``owner`` names the new owner of an assignment, as the incident's source resolved it.
    """
    what = f"Assigned to {owner}" if owner and action.change.kind == "assign" else None
    text = f"{what or action.change.summary()} by {action.actor.display} via Teams"
    if action.change.kind == "status" and action.change.comment:
        text += f": {action.change.comment}"
    return text


def closing_label(classification: str | None, reason: str | None) -> str:
    """``False positive: inaccurate data`` for a classification and reason."""
    for value, why, label in CLOSING_CHOICES.values():
        if (value, why) == (classification, reason):
            return label
    return classification or "unclassified"


class TriageAction(BaseModel):
    """A recorded triage action and its outcome."""

    model_config = ConfigDict(frozen=True)

    id: int
    intent_id: str
    incident_key: str
    conversation_id: str
    verb: str
    change: TriageChange
    actor: Actor
    state: TriageState
    detail: str | None = None
    created_at: float
    updated_at: float

    @property
    def when(self) -> datetime:
        """When the action last changed state (UTC)."""
        return datetime.fromtimestamp(self.updated_at, tz=timezone.utc)

    def stamp(self) -> str:
        """A string that sorts like the action's history, for the card's version."""
        return f"{self.id:012d}.{int(self.updated_at * 1000):015d}.{self.state.value}"


class IncidentDetails(BaseModel):
    """The first alerts and entities of an incident, as *Show alerts and entities* lists them."""

    model_config = ConfigDict(frozen=True)

    alerts: tuple[tuple[str, str], ...] = ()
    """(name, "severity · status · product") of each alert shown."""

    entities: tuple[tuple[str, str], ...] = ()
    """(kind, readable name) of each entity shown."""

    more_alerts: int = 0
    more_entities: int = 0
