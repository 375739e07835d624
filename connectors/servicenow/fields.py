"""The ONE field-and-state mapping between Sentinel and ServiceNow (pure, overridable).

Severity ⇄ impact/urgency/priority: each Sentinel severity names an impact and an urgency
(1 high .. 3 low); the priority is what ServiceNow's default priority lookup derives from
the two (``priority_of``). Read back, a priority becomes the severity whose mapped priority
is nearest (a tie goes to the more severe).

Status ⇄ state: Sentinel's New / Active / Closed (with its classification) become the
states of ``change_request`` (-5 New … 3 Closed, 4 Canceled) or of ``incident`` (1 New …
6 Resolved, 8 Canceled). A false positive cancels the record; any other classification
closes (change) or resolves (incident) it, with the ``close_code`` and ``close_notes`` that
ServiceNow requires then. Read back, New stays New, a closed or canceled record is Closed
(canceled → FalsePositive), anything else is Active.

Every table can be overridden by ``ServiceNowSettings`` (``FieldMapping.from_settings``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from core.itsm import ItsmChange, RecordType
from core.models import IncidentStatus, Severity
from core.settings.servicenow import ServiceNowSettings

PRIORITY_LOOKUP: Mapping[tuple[int, int], int] = MappingProxyType(
    {
        (1, 1): 1,
        (1, 2): 2,
        (1, 3): 3,
        (2, 1): 2,
        (2, 2): 3,
        (2, 3): 4,
        (3, 1): 3,
        (3, 2): 4,
        (3, 3): 5,
    }
)
"""ServiceNow's default priority data lookup: (impact, urgency) → priority (1..5)."""


class Lifecycle(StrEnum):
    """Where a record stands, in the words of the state tables' keys."""

    NEW = "New"
    ACTIVE = "Active"
    CLOSED = "Closed"
    CANCELED = "Canceled"


class Classification(StrEnum):
    """Sentinel's closing classifications."""

    TRUE_POSITIVE = "TruePositive"
    BENIGN_POSITIVE = "BenignPositive"
    FALSE_POSITIVE = "FalsePositive"
    UNDETERMINED = "Undetermined"


DEFAULT_SEVERITY_LEVELS: Mapping[Severity, tuple[int, int]] = MappingProxyType(
    {
        Severity.HIGH: (1, 1),
        Severity.MEDIUM: (2, 2),
        Severity.LOW: (3, 2),
        Severity.INFORMATIONAL: (3, 3),
    }
)
"""Severity → (impact, urgency): priorities 1, 3, 4 and 5."""

DEFAULT_CHANGE_STATES: Mapping[Lifecycle, str] = MappingProxyType(
    {
        Lifecycle.NEW: "-5",
        Lifecycle.ACTIVE: "-1",
        Lifecycle.CLOSED: "3",
        Lifecycle.CANCELED: "4",
    }
)
"""change_request: New → -5 New, Active → -1 Implement, Closed → 3, Canceled → 4."""

DEFAULT_INCIDENT_STATES: Mapping[Lifecycle, str] = MappingProxyType(
    {
        Lifecycle.NEW: "1",
        Lifecycle.ACTIVE: "2",
        Lifecycle.CLOSED: "6",
        Lifecycle.CANCELED: "8",
    }
)
"""incident: New → 1, Active → 2 In Progress, Closed → 6 Resolved, Canceled → 8."""

CHANGE_STATE_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "-5": "New",
        "-4": "Assess",
        "-3": "Authorize",
        "-2": "Scheduled",
        "-1": "Implement",
        "0": "Review",
        "3": "Closed",
        "4": "Canceled",
    }
)
"""The change_request states of ServiceNow's default state model."""

INCIDENT_STATE_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "1": "New",
        "2": "In Progress",
        "3": "On Hold",
        "6": "Resolved",
        "7": "Closed",
        "8": "Canceled",
    }
)
"""The incident states of ServiceNow's default state model."""

_CLOSED_INCIDENT = frozenset({"6", "7"})
_CHANGE_CLOSE_CODES = {
    Classification.TRUE_POSITIVE: "successful",
    Classification.BENIGN_POSITIVE: "successful",
    Classification.UNDETERMINED: "successful_issues",
}
_INCIDENT_CLOSE_CODE = "Solution provided"
_INCIDENT_FALSE_POSITIVE_CODE = "No resolution provided"


def priority_of(impact: int, urgency: int) -> int:
    """The priority ServiceNow's default lookup gives ``impact`` × ``urgency`` (1..3 each)."""
    try:
        return PRIORITY_LOOKUP[(impact, urgency)]
    except KeyError:
        raise ValueError(f"impact and urgency must be 1..3, not {impact}, {urgency}") from None


def state_label(table: RecordType, state: str) -> str:
    """The default model's label of ``state`` in ``table``; the value itself when unknown."""
    labels = CHANGE_STATE_LABELS if table is RecordType.CHANGE_REQUEST else INCIDENT_STATE_LABELS
    return labels.get(state, state)


@dataclass(frozen=True)
class SentinelOutcome:
    """A Sentinel status read back from a record (with a classification once closed)."""

    status: IncidentStatus
    classification: Classification | None = None


@dataclass(frozen=True)
class FieldMapping:
    """The severity and state tables in force (the defaults, or the settings' overrides)."""

    severity_levels: Mapping[Severity, tuple[int, int]] = field(
        default_factory=lambda: DEFAULT_SEVERITY_LEVELS
    )
    change_states: Mapping[Lifecycle, str] = field(default_factory=lambda: DEFAULT_CHANGE_STATES)
    incident_states: Mapping[Lifecycle, str] = field(
        default_factory=lambda: DEFAULT_INCIDENT_STATES
    )

    def __post_init__(self) -> None:
        """Refuse a table that misses an entry or names an impossible level."""
        if set(self.severity_levels) != set(Severity):
            raise ValueError("severity_priority must name every severity")
        for impact, urgency in self.severity_levels.values():
            priority_of(impact, urgency)
        for states in (self.change_states, self.incident_states):
            if set(states) != set(Lifecycle):
                raise ValueError("a state table must name New, Active, Closed and Canceled")

    @classmethod
    def from_settings(cls, settings: ServiceNowSettings) -> FieldMapping:
        """The defaults with ``settings``' overrides applied; ``ValueError`` names a bad key."""
        levels = dict(DEFAULT_SEVERITY_LEVELS)
        for name, pair in settings.severity_priority.items():
            levels[Severity.parse(name)] = (int(pair[0]), int(pair[1]))
        return cls(
            severity_levels=MappingProxyType(levels),
            change_states=_overridden(DEFAULT_CHANGE_STATES, settings.change_states),
            incident_states=_overridden(DEFAULT_INCIDENT_STATES, settings.incident_states),
        )

    def levels(self, severity: Severity) -> tuple[int, int, int]:
        """The (impact, urgency, priority) a Sentinel severity becomes."""
        impact, urgency = self.severity_levels[severity]
        return impact, urgency, priority_of(impact, urgency)

    def severity(self, priority: int) -> Severity:
        """The severity whose mapped priority is nearest ``priority`` (ties: more severe)."""
        if not 1 <= priority <= 5:
            raise ValueError(f"priority must be 1..5, not {priority}")
        ranked = sorted(Severity, key=lambda s: (abs(self.levels(s)[2] - priority), -s.rank))
        return ranked[0]

    def states(self, table: RecordType) -> Mapping[Lifecycle, str]:
        """The state table of ``table`` (change_request, or incident for the others)."""
        return self.change_states if table is RecordType.CHANGE_REQUEST else self.incident_states

    def to_record(
        self,
        table: RecordType,
        status: IncidentStatus,
        classification: Classification | None = None,
        *,
        note: str = "",
    ) -> ItsmChange:
        """The state change (with close code and notes when closing) for a Sentinel status."""
        states = self.states(table)
        if status is not IncidentStatus.CLOSED:
            lifecycle = Lifecycle.NEW if status is IncidentStatus.NEW else Lifecycle.ACTIVE
            return ItsmChange(state=states[lifecycle])
        kind = classification or Classification.UNDETERMINED
        notes = f"Sentinel incident closed as {kind.value}" + (f": {note}" if note else ".")
        if kind is Classification.FALSE_POSITIVE:
            code = "" if table is RecordType.CHANGE_REQUEST else _INCIDENT_FALSE_POSITIVE_CODE
            return ItsmChange(
                state=states[Lifecycle.CANCELED], close_code=code or None, close_notes=notes
            )
        if table is RecordType.CHANGE_REQUEST:
            code = _CHANGE_CLOSE_CODES[kind]
        else:
            code = _INCIDENT_CLOSE_CODE
        return ItsmChange(state=states[Lifecycle.CLOSED], close_code=code, close_notes=notes)

    def from_record(self, table: RecordType, state: str, close_code: str = "") -> SentinelOutcome:
        """The Sentinel status (and classification) a record's state and close code mean."""
        states = self.states(table)
        if state == states[Lifecycle.NEW]:
            return SentinelOutcome(IncidentStatus.NEW)
        if state == states[Lifecycle.CANCELED]:
            return SentinelOutcome(IncidentStatus.CLOSED, Classification.FALSE_POSITIVE)
        closed = {states[Lifecycle.CLOSED]}
        if table is not RecordType.CHANGE_REQUEST:
            closed |= _CLOSED_INCIDENT
        if state not in closed:
            return SentinelOutcome(IncidentStatus.ACTIVE)
        if close_code in ("successful", _INCIDENT_CLOSE_CODE):
            return SentinelOutcome(IncidentStatus.CLOSED, Classification.TRUE_POSITIVE)
        return SentinelOutcome(IncidentStatus.CLOSED, Classification.UNDETERMINED)

    def severity_change(self, severity: Severity) -> ItsmChange:
        """The impact and urgency (hence priority) a Sentinel severity is written as."""
        impact, urgency, priority = self.levels(severity)
        return ItsmChange(impact=impact, urgency=urgency, priority=priority)


def _overridden(
    defaults: Mapping[Lifecycle, str], overrides: Mapping[str, str]
) -> Mapping[Lifecycle, str]:
    """``defaults`` with the settings' entries replacing theirs (keys by name, any case)."""
    table = dict(defaults)
    for name, value in overrides.items():
        matches = [member for member in Lifecycle if member.value.lower() == name.lower()]
        if not matches:
            raise ValueError(f"unknown status {name!r}; use New, Active, Closed or Canceled")
        table[matches[0]] = str(value).strip()
    return MappingProxyType(table)
