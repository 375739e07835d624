"""The one Sentinel ⇄ ServiceNow field-and-state mapping, as a table, both ways."""

from __future__ import annotations

import pytest

from connectors.servicenow.fields import (
    Classification,
    FieldMapping,
    SentinelOutcome,
    priority_of,
    state_label,
)
from core.itsm import RecordType
from core.models import IncidentStatus, Severity
from core.settings.servicenow import ServiceNowSettings

CHG, INC = RecordType.CHANGE_REQUEST, RecordType.INCIDENT
NEW, ACTIVE, CLOSED = IncidentStatus.NEW, IncidentStatus.ACTIVE, IncidentStatus.CLOSED
TP, BP = Classification.TRUE_POSITIVE, Classification.BENIGN_POSITIVE
FP, UND = Classification.FALSE_POSITIVE, Classification.UNDETERMINED


@pytest.mark.parametrize(
    ("impact", "urgency", "priority"),
    [
        (1, 1, 1),
        (1, 2, 2),
        (1, 3, 3),
        (2, 1, 2),
        (2, 2, 3),
        (2, 3, 4),
        (3, 1, 3),
        (3, 2, 4),
        (3, 3, 5),
    ],
)
def test_priority_of_default_lookup_matches_servicenow(
    impact: int, urgency: int, priority: int
) -> None:
    """Priority is ServiceNow's default impact × urgency lookup, cell by cell."""
    assert priority_of(impact, urgency) == priority


def test_priority_of_out_of_range_refused() -> None:
    """An impact or urgency outside 1..3 is refused."""
    with pytest.raises(ValueError, match=r"1\.\.3"):
        priority_of(0, 2)


@pytest.mark.parametrize(
    ("severity", "levels"),
    [
        (Severity.HIGH, (1, 1, 1)),
        (Severity.MEDIUM, (2, 2, 3)),
        (Severity.LOW, (3, 2, 4)),
        (Severity.INFORMATIONAL, (3, 3, 5)),
    ],
)
def test_fields_severity_to_levels_default_table(
    severity: Severity, levels: tuple[int, int, int]
) -> None:
    """Each severity becomes its (impact, urgency, priority), and the write carries them."""
    mapping = FieldMapping()
    assert mapping.levels(severity) == levels
    change = mapping.severity_change(severity)
    assert (change.impact, change.urgency, change.priority) == levels


@pytest.mark.parametrize(
    ("priority", "severity"),
    [
        (1, Severity.HIGH),
        (2, Severity.HIGH),
        (3, Severity.MEDIUM),
        (4, Severity.LOW),
        (5, Severity.INFORMATIONAL),
    ],
)
def test_fields_priority_to_severity_nearest_more_severe_on_tie(
    priority: int, severity: Severity
) -> None:
    """A priority reads back as the nearest mapped severity; P2 (a tie) is High."""
    assert FieldMapping().severity(priority) is severity


def test_fields_severity_round_trip_every_severity() -> None:
    """Every severity written and read back is itself."""
    mapping = FieldMapping()
    for severity in Severity:
        assert mapping.severity(mapping.levels(severity)[2]) is severity


@pytest.mark.parametrize(
    ("table", "status", "classification", "state", "close_code"),
    [
        (CHG, NEW, None, "-5", None),
        (CHG, ACTIVE, None, "-1", None),
        (CHG, CLOSED, TP, "3", "successful"),
        (CHG, CLOSED, BP, "3", "successful"),
        (CHG, CLOSED, UND, "3", "successful_issues"),
        (CHG, CLOSED, None, "3", "successful_issues"),
        (CHG, CLOSED, FP, "4", None),
        (INC, NEW, None, "1", None),
        (INC, ACTIVE, None, "2", None),
        (INC, CLOSED, TP, "6", "Solution provided"),
        (INC, CLOSED, BP, "6", "Solution provided"),
        (INC, CLOSED, UND, "6", "Solution provided"),
        (INC, CLOSED, FP, "8", "No resolution provided"),
    ],
)
def test_fields_status_to_state_table(
    table: RecordType,
    status: IncidentStatus,
    classification: Classification | None,
    state: str,
    close_code: str | None,
) -> None:
    """Sentinel status (and classification) → state, with close code and notes on closing."""
    change = FieldMapping().to_record(table, status, classification, note="patched")
    assert (change.state, change.close_code) == (state, close_code)
    if status is CLOSED:
        assert change.close_notes is not None and change.close_notes.endswith(": patched")
    else:
        assert change.close_notes is None


@pytest.mark.parametrize(
    ("table", "state", "close_code", "outcome"),
    [
        (CHG, "-5", "", SentinelOutcome(NEW)),
        (CHG, "-4", "", SentinelOutcome(ACTIVE)),
        (CHG, "-3", "", SentinelOutcome(ACTIVE)),
        (CHG, "-2", "", SentinelOutcome(ACTIVE)),
        (CHG, "-1", "", SentinelOutcome(ACTIVE)),
        (CHG, "0", "", SentinelOutcome(ACTIVE)),
        (CHG, "3", "successful", SentinelOutcome(CLOSED, TP)),
        (CHG, "3", "successful_issues", SentinelOutcome(CLOSED, UND)),
        (CHG, "3", "unsuccessful", SentinelOutcome(CLOSED, UND)),
        (CHG, "4", "", SentinelOutcome(CLOSED, FP)),
        (INC, "1", "", SentinelOutcome(NEW)),
        (INC, "2", "", SentinelOutcome(ACTIVE)),
        (INC, "3", "", SentinelOutcome(ACTIVE)),
        (INC, "6", "Solution provided", SentinelOutcome(CLOSED, TP)),
        (INC, "7", "Solution provided", SentinelOutcome(CLOSED, TP)),
        (INC, "7", "Workaround provided", SentinelOutcome(CLOSED, UND)),
        (INC, "8", "", SentinelOutcome(CLOSED, FP)),
    ],
)
def test_fields_state_to_status_table(
    table: RecordType, state: str, close_code: str, outcome: SentinelOutcome
) -> None:
    """Every default state of both tables reads back as a Sentinel status."""
    assert FieldMapping().from_record(table, state, close_code) == outcome


@pytest.mark.parametrize(
    ("table", "state", "label"),
    [(CHG, "-5", "New"), (CHG, "-3", "Authorize"), (INC, "3", "On Hold"), (INC, "99", "99")],
)
def test_fields_state_label_default_model(table: RecordType, state: str, label: str) -> None:
    """A state shows its default label; an instance's own state shows its value."""
    assert state_label(table, state) == label


def test_fields_settings_override_severity_and_states() -> None:
    """Overrides from settings replace only the entries they name."""
    settings = ServiceNowSettings(
        severity_priority={"high": (1, 2), "Low": (3, 3)},
        change_states={"active": "-2"},
        incident_states={"Closed": "7"},
    )
    mapping = FieldMapping.from_settings(settings)
    assert mapping.levels(Severity.HIGH) == (1, 2, 2)
    assert mapping.levels(Severity.LOW) == (3, 3, 5)
    assert mapping.levels(Severity.MEDIUM) == (2, 2, 3)
    assert mapping.to_record(CHG, ACTIVE).state == "-2"
    assert mapping.to_record(INC, CLOSED, TP).state == "7"
    assert mapping.from_record(CHG, "-2") == SentinelOutcome(ACTIVE)
    assert mapping.severity(5) is Severity.LOW  # a tie with Informational: the more severe


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"severity_priority": {"Critical": (1, 1)}}, "unknown severity"),
        ({"severity_priority": {"High": (4, 1)}}, r"1\.\.3"),
        ({"change_states": {"Reopened": "-4"}}, "unknown status"),
    ],
)
def test_fields_settings_bad_override_refused(overrides: dict[str, object], message: str) -> None:
    """An override naming an unknown key or an impossible level is refused with the reason."""
    with pytest.raises(ValueError, match=message):
        FieldMapping.from_settings(ServiceNowSettings.model_validate(overrides))
