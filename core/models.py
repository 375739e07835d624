"""Warden's domain models: what the rest of the product speaks, whatever the vendor.

These models know no vendor SDK and no presentation. A vendor's payload is turned into them
by that vendor's ``connectors/<name>/mapping.py``; cards are drawn from them by ``cards/``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    """An incident's severity, in Sentinel's words, ordered from least to most severe."""

    INFORMATIONAL = "Informational"
    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"

    @property
    def rank(self) -> int:
        """Position in the order Informational < Low < Medium < High (0..3)."""
        return _SEVERITY_ORDER.index(self)

    @classmethod
    def parse(cls, text: str) -> Severity:
        """The severity named by ``text``, case-insensitively; ``ValueError`` otherwise."""
        for member in cls:
            if member.value.lower() == text.strip().lower():
                return member
        names = ", ".join(m.value.lower() for m in cls)
        raise ValueError(f"unknown severity {text!r}; use one of {names}")


_SEVERITY_ORDER = [Severity.INFORMATIONAL, Severity.LOW, Severity.MEDIUM, Severity.HIGH]


class IncidentStatus(StrEnum):
    """An incident's lifecycle state."""

    NEW = "New"
    ACTIVE = "Active"
    CLOSED = "Closed"


class IncidentSource(StrEnum):
    """Where Warden reads an incident from (and writes its triage back to)."""

    SENTINEL = "sentinel"
    DEFENDER = "defender"


class Owner(BaseModel):
    """The person (or group) an incident is assigned to."""

    model_config = ConfigDict(frozen=True)

    object_id: str | None = None
    name: str | None = None
    email: str | None = None
    upn: str | None = None

    @property
    def display(self) -> str | None:
        """The best human-readable name we have, or ``None`` when nobody is assigned."""
        return self.name or self.upn or self.email


class Incident(BaseModel):
    """One version of a security incident, as Warden shows and stores it.

    ``key`` identifies the incident across versions (the ARM resource id, lower-cased);
    versions are ordered by ``last_modified`` and then ``etag``.
    """

    model_config = ConfigDict(frozen=True)

    key: str = Field(description="Stable identity: the ARM resource id, lower-cased.")
    name: str = Field(description="The incident's resource name (a GUID).")
    number: int | None = None
    title: str
    description: str | None = None
    severity: Severity
    status: IncidentStatus
    owner: Owner = Field(default_factory=Owner)
    classification: str | None = None
    created: datetime | None = None
    last_modified: datetime
    etag: str = ""
    alert_count: int = 0
    tactics: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    incident_url: str | None = None
    provider_name: str | None = None
    provider_url: str | None = None
    workspace: str | None = None
    source: IncidentSource = IncidentSource.SENTINEL
    xdr_id: str | None = Field(
        default=None,
        description="The Defender XDR incident id, when Defender XDR reports this incident too.",
    )
    source_key: str | None = Field(
        default=None,
        description="This version's own key at its source, when it is shown under the key of "
        "the same incident reported by the other source (one card for both).",
    )

    @property
    def native_key(self) -> str:
        """The key that names this version at its own source."""
        return self.source_key or self.key

    @property
    def reported_by(self) -> frozenset[IncidentSource]:
        """The sources that report this incident (an XDR incident is Defender's too)."""
        extra = {IncidentSource.DEFENDER} if self.xdr_id else set()
        return frozenset({self.source, *extra})

    @property
    def version(self) -> tuple[datetime, str]:
        """The ordering key of this version: later ``last_modified`` wins, then ``etag``."""
        return (self.last_modified, self.etag)

    def is_newer_than(self, other: Incident | None) -> bool:
        """True when this version should replace ``other`` (strictly newer)."""
        return other is None or self.version > other.version


class ConversationKind(StrEnum):
    """Where a conversation lives in Teams."""

    CHANNEL = "channel"
    GROUP_CHAT = "groupChat"
    PERSONAL = "personal"


class ConversationRef(BaseModel):
    """Everything needed to post into a Teams conversation later (proactively).

    ``conversation_id`` is the channel's or chat's id without any ``;messageid=`` suffix,
    so a send posts a new message rather than a reply in a thread.
    """

    model_config = ConfigDict(frozen=True)

    conversation_id: str
    service_url: str
    channel_id: str = "msteams"
    kind: ConversationKind = ConversationKind.CHANNEL
    tenant_id: str | None = None
    bot_id: str = ""
    bot_name: str = ""
    name: str | None = None
    team_id: str | None = None
    team_name: str | None = None


class Subscription(BaseModel):
    """A conversation's wish to receive incident cards of at least ``min_severity``, from
    the ``sources`` it names (Sentinel unless it asked for Defender XDR)."""

    model_config = ConfigDict(frozen=True)

    conversation_id: str
    min_severity: Severity = Severity.INFORMATIONAL
    sources: frozenset[IncidentSource] = frozenset({IncidentSource.SENTINEL})

    def wants(self, incident: Incident) -> bool:
        """True when ``incident`` is severe enough and comes from a source asked for."""
        return incident.severity.rank >= self.min_severity.rank and bool(
            self.sources & incident.reported_by
        )


class ConversationStatus(BaseModel):
    """What ``status`` tells a conversation about itself and Warden's delivery."""

    model_config = ConfigDict(frozen=True)

    subscription: Subscription | None
    incidents_posted: int
    last_delivery: datetime | None
    outbox_pending: int
    outbox_dead: int = Field(description="Jobs in the dead-letter queue (dead or quarantined).")
    delivery_paused: bool = Field(
        default=False,
        description="The Teams connector's circuit breaker is open: sends are held back.",
    )
    budget_scopes: tuple[str, ...] = Field(
        default=(),
        description="Budget scopes subscribed here (``subscribe budgets``), as routing keys.",
    )
