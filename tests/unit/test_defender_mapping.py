"""Defender XDR's incident values ⇄ Warden's, as one pure table (``graph.defender_mapping``)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from msgraph.generated.models.security.alert import Alert
from msgraph.generated.models.security.alert_classification import AlertClassification as C
from msgraph.generated.models.security.alert_determination import AlertDetermination as D
from msgraph.generated.models.security.alert_severity import AlertSeverity
from msgraph.generated.models.security.incident import Incident as GraphIncident
from msgraph.generated.models.security.incident_status import IncidentStatus as S
from msgraph.generated.models.security.service_source import ServiceSource

from core.errors import InvalidPayload
from core.models import IncidentSource, IncidentStatus, Owner, Severity
from core.triage import TriageChange
from graph.defender_mapping import (
    UnsupportedChange,
    closing_out,
    incident_from_graph,
    incident_id,
    patch_for,
)

WHEN = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


def _incident(**values: object) -> GraphIncident:
    base: dict[str, object] = {
        "id": "2972395",
        "display_name": "Phish",
        "last_update_date_time": WHEN,
        "status": S.Active,
        "severity": AlertSeverity.Medium,
    }
    return GraphIncident(**{**base, **values})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "classification", "shown", "verdict"),
    [
        (S.Active, C.Unknown, IncidentStatus.NEW, None),
        (S.InProgress, None, IncidentStatus.ACTIVE, None),
        (S.AwaitingAction, None, IncidentStatus.ACTIVE, None),
        (S.Resolved, C.TruePositive, IncidentStatus.CLOSED, "TruePositive"),
        (S.Resolved, C.InformationalExpectedActivity, IncidentStatus.CLOSED, "BenignPositive"),
        (S.Resolved, C.FalsePositive, IncidentStatus.CLOSED, "FalsePositive"),
        (S.Resolved, C.Unknown, IncidentStatus.CLOSED, "Undetermined"),
        (S.Redirected, None, IncidentStatus.CLOSED, "Undetermined"),
    ],
)
def test_defender_mapping_status_and_classification_map_to_warden_words(
    status: S, classification: C | None, shown: IncidentStatus, verdict: str | None
) -> None:
    """Defender's status and classification read as the card's status and verdict."""
    found = incident_from_graph(_incident(status=status, classification=classification))
    assert (found.status, found.classification) == (shown, verdict)


def test_defender_mapping_incident_fields_key_owner_products_and_xdr_id() -> None:
    """Key, owner, severity, alerts' products and tactics, tags and the portal link map."""
    alerts = [
        Alert(category="InitialAccess", service_source=ServiceSource.MicrosoftDefenderForOffice365),
        Alert(category="Execution", service_source=ServiceSource.MicrosoftDefenderForEndpoint),
    ]
    found = incident_from_graph(
        _incident(
            assigned_to="ada@contoso.com",
            severity=AlertSeverity.High,
            alerts=alerts,
            custom_tags=["vip"],
            incident_web_url="https://security.microsoft.com/incidents/2972395",
        )
    )
    assert found.key == "/security/incidents/2972395" and incident_id(found.key) == "2972395"
    assert found.owner == Owner(name="ada@contoso.com", upn="ada@contoso.com")
    assert found.severity is Severity.HIGH and found.alert_count == 2
    assert found.products == (
        "Microsoft Defender for Endpoint",
        "Microsoft Defender for Office 365",
    )
    assert found.tactics == ("Execution", "InitialAccess") and found.labels == ("vip",)
    assert found.provider_url == "https://security.microsoft.com/incidents/2972395"
    assert found.source is IncidentSource.DEFENDER and found.xdr_id == "2972395"


def test_defender_mapping_incident_without_update_time_is_invalid() -> None:
    """An incident without lastUpdateDateTime cannot be ordered, so it is refused."""
    with pytest.raises(InvalidPayload):
        incident_from_graph(_incident(last_update_date_time=None))


@pytest.mark.parametrize(
    ("choice", "now", "expected"),
    [
        (("TruePositive", "SuspiciousActivity"), None, (C.TruePositive, D.Other)),
        (("TruePositive", "SuspiciousActivity"), D.Phishing, (C.TruePositive, D.Phishing)),
        (("TruePositive", "SuspiciousActivity"), D.NotMalicious, (C.TruePositive, D.Other)),
        (
            ("BenignPositive", "SuspiciousButExpected"),
            None,
            (C.InformationalExpectedActivity, D.ConfirmedActivity),
        ),
        (("FalsePositive", "IncorrectAlertLogic"), None, (C.FalsePositive, D.NotMalicious)),
        (("FalsePositive", "InaccurateData"), None, (C.FalsePositive, D.NotEnoughDataToValidate)),
        (("Undetermined", None), None, (C.Unknown, D.Unknown)),
    ],
)
def test_defender_mapping_closing_choice_gives_classification_and_fitting_determination(
    choice: tuple[str, str | None], now: D | None, expected: tuple[C, D]
) -> None:
    """Each card closing choice becomes Defender's pair; a fitting determination is kept."""
    assert closing_out(*choice, now) == expected


def test_defender_mapping_patch_status_and_assignment_set_only_their_fields() -> None:
    """*Activate* PATCHes inProgress only; an assignment PATCHes assignedTo only."""
    active = patch_for(TriageChange(kind="status", status=IncidentStatus.ACTIVE))
    assert (active.status, active.assigned_to, active.classification) == (S.InProgress, None, None)
    assign = patch_for(TriageChange(kind="assign", owner=Owner(object_id="x")), assignee="a@b.c")
    assert (assign.assigned_to, assign.status) == ("a@b.c", None)


def test_defender_mapping_severity_change_is_unsupported() -> None:
    """Defender XDR takes no severity through Graph: the change is refused with a reason."""
    with pytest.raises(UnsupportedChange, match="Defender portal"):
        patch_for(TriageChange(kind="severity", severity=Severity.LOW))
