"""Pure mapping of Defender XDR incidents (Graph ``security/incidents``) to and from Warden's.

Reads msgraph-sdk's ``security.Incident`` (with its ``$expand=alerts``) into Warden's
``Incident``, and builds the ``PATCH /security/incidents/{id}`` body of a triage change. The
values follow the way Sentinel and Defender XDR synchronise one incident:

=========================  =================================
Defender XDR               Warden (Sentinel's words)
=========================  =================================
status active              New
status inProgress          Active
status awaitingAction      Active
status resolved            Closed
status redirected          Closed (merged into another)
truePositive               TruePositive (SuspiciousActivity)
informationalExpected...   BenignPositive (SuspiciousButExpected)
falsePositive              FalsePositive (IncorrectAlertLogic, or InaccurateData when
                           the determination is notEnoughDataToValidate)
unknown                    Undetermined (on a closed incident; nothing on an open one)
=========================  =================================

Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from enum import Enum

from msgraph.generated.models.security.alert import Alert as GraphAlert
from msgraph.generated.models.security.alert_classification import AlertClassification
from msgraph.generated.models.security.alert_determination import AlertDetermination
from msgraph.generated.models.security.alert_severity import AlertSeverity
from msgraph.generated.models.security.incident import Incident as GraphIncident
from msgraph.generated.models.security.incident_status import IncidentStatus as GraphStatus

from core.errors import InvalidPayload
from core.models import Incident, IncidentSource, IncidentStatus, Owner, Severity
from core.triage import TriageChange

KEY_PREFIX = "/security/incidents/"
"""Warden's key of a Defender XDR incident is its Graph path: ``/security/incidents/{id}``."""

PROVIDER = "Microsoft Defender XDR"

STATUS_IN: dict[GraphStatus, IncidentStatus] = {
    GraphStatus.Active: IncidentStatus.NEW,
    GraphStatus.InProgress: IncidentStatus.ACTIVE,
    GraphStatus.AwaitingAction: IncidentStatus.ACTIVE,
    GraphStatus.Resolved: IncidentStatus.CLOSED,
    GraphStatus.Redirected: IncidentStatus.CLOSED,
}
STATUS_OUT: dict[IncidentStatus, GraphStatus] = {
    IncidentStatus.NEW: GraphStatus.Active,
    IncidentStatus.ACTIVE: GraphStatus.InProgress,
    IncidentStatus.CLOSED: GraphStatus.Resolved,
}
SEVERITY_IN: dict[AlertSeverity, Severity] = {
    AlertSeverity.Informational: Severity.INFORMATIONAL,
    AlertSeverity.Low: Severity.LOW,
    AlertSeverity.Medium: Severity.MEDIUM,
    AlertSeverity.High: Severity.HIGH,
}
CLASSIFICATION_IN: dict[AlertClassification, str] = {
    AlertClassification.TruePositive: "TruePositive",
    AlertClassification.InformationalExpectedActivity: "BenignPositive",
    AlertClassification.FalsePositive: "FalsePositive",
}
_D = AlertDetermination
DETERMINATIONS: dict[AlertClassification, frozenset[AlertDetermination]] = {
    AlertClassification.TruePositive: frozenset(
        {
            _D.MultiStagedAttack,
            _D.MaliciousUserActivity,
            _D.CompromisedAccount,
            _D.Malware,
            _D.Phishing,
            _D.UnwantedSoftware,
            _D.Apt,
            _D.SecurityPersonnel,
            _D.Other,
        }
    ),
    AlertClassification.InformationalExpectedActivity: frozenset(
        {_D.SecurityTesting, _D.LineOfBusinessApplication, _D.ConfirmedActivity, _D.Other}
    ),
    AlertClassification.FalsePositive: frozenset(
        {_D.NotMalicious, _D.NotEnoughDataToValidate, _D.Other}
    ),
    AlertClassification.Unknown: frozenset({_D.Unknown}),
}
"""The determinations Defender XDR offers under each classification."""

CLOSING_OUT: dict[tuple[str, str | None], tuple[AlertClassification, AlertDetermination]] = {
    ("TruePositive", "SuspiciousActivity"): (AlertClassification.TruePositive, _D.Other),
    ("BenignPositive", "SuspiciousButExpected"): (
        AlertClassification.InformationalExpectedActivity,
        _D.ConfirmedActivity,
    ),
    ("FalsePositive", "IncorrectAlertLogic"): (AlertClassification.FalsePositive, _D.NotMalicious),
    ("FalsePositive", "InaccurateData"): (
        AlertClassification.FalsePositive,
        _D.NotEnoughDataToValidate,
    ),
    ("Undetermined", None): (AlertClassification.Unknown, _D.Unknown),
}
"""Each closing choice of a card as Defender XDR's classification and default determination."""

PRODUCTS = {
    "microsoftDefenderForEndpoint": "Microsoft Defender for Endpoint",
    "microsoftDefenderForIdentity": "Microsoft Defender for Identity",
    "microsoftDefenderForCloudApps": "Microsoft Defender for Cloud Apps",
    "microsoftDefenderForOffice365": "Microsoft Defender for Office 365",
    "microsoft365Defender": "Microsoft Defender XDR",
    "azureAdIdentityProtection": "Microsoft Entra ID Protection",
    "microsoftDefenderForCloud": "Microsoft Defender for Cloud",
    "microsoftSentinel": "Microsoft Sentinel",
}
"""Readable names of an alert's ``serviceSource``."""


class UnsupportedChange(ValueError):
    """A triage change Defender XDR does not take through Graph (the card says why)."""


def incident_key(incident_id: str) -> str:
    """Warden's key of the Defender XDR incident ``incident_id``."""
    return f"{KEY_PREFIX}{incident_id}".lower()


def incident_id(key: str) -> str:
    """The Defender XDR incident id in a Warden key; ``ValueError`` for another source's."""
    if not key.startswith(KEY_PREFIX) or not key[len(KEY_PREFIX) :]:
        raise ValueError("not a Defender XDR incident key")
    return key[len(KEY_PREFIX) :]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def incident_from_graph(found: GraphIncident) -> Incident:
    """The ``Incident`` a Graph ``security.incident`` describes; ``InvalidPayload`` if unusable."""
    modified = _utc(found.last_update_date_time)
    if not found.id or modified is None or not found.display_name:
        missing = "id" if not found.id else "displayName" if modified else "lastUpdateDateTime"
        raise InvalidPayload(f"a Defender XDR incident needs {missing}", field=missing)
    status = STATUS_IN.get(found.status or GraphStatus.Active, IncidentStatus.NEW)
    alerts = list(found.alerts or [])
    assigned = (found.assigned_to or "").strip() or None
    return Incident(
        key=incident_key(found.id),
        name=found.id,
        title=found.display_name,
        description=found.description or found.summary,
        severity=SEVERITY_IN.get(found.severity or AlertSeverity.Unknown, Severity.INFORMATIONAL),
        status=status,
        owner=Owner(name=assigned, upn=assigned if assigned and "@" in assigned else None),
        classification=classification_in(found.classification, status),
        created=_utc(found.created_date_time),
        last_modified=modified,
        alert_count=len(alerts),
        tactics=_sorted_unique(alert.category for alert in alerts),
        products=_sorted_unique(_product(alert) for alert in alerts),
        labels=tuple(found.custom_tags or ()),
        provider_url=found.incident_web_url,
        provider_name=PROVIDER,
        source=IncidentSource.DEFENDER,
        xdr_id=found.id,
    )


def classification_in(value: AlertClassification | None, status: IncidentStatus) -> str | None:
    """Warden's classification of a Defender XDR one (``Undetermined`` only once closed)."""
    named = CLASSIFICATION_IN.get(value) if value is not None else None
    if named is None and status is IncidentStatus.CLOSED:
        return "Undetermined"
    return named


def wire(value: Enum | None) -> str | None:
    """The wire text of an msgraph-sdk enum member (its value is a one-item tuple)."""
    if value is None:
        return None
    raw = value.value
    return str(raw[0] if isinstance(raw, tuple) else raw)


def _product(alert: GraphAlert) -> str | None:
    source = wire(alert.service_source)
    if source is None:
        return alert.product_name
    return PRODUCTS.get(source, alert.product_name or source)


def _sorted_unique(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(sorted({v for v in values if v}))


def closing_out(
    classification: str | None, reason: str | None, now: AlertDetermination | None = None
) -> tuple[AlertClassification, AlertDetermination]:
    """Defender XDR's classification and determination for a card's closing choice.

    The incident's current determination ``now`` is kept when it fits the classification
    (an analyst's ``phishing`` stays ``phishing`` when a responder closes as true positive).
    """
    found = CLOSING_OUT.get((classification or "", reason))
    if found is None:
        raise UnsupportedChange(f"{classification or 'no classification'} is not a way to close")
    chosen, default = found
    keep = now is not None and now in DETERMINATIONS[chosen] and now is not _D.Other
    return chosen, now if keep and now is not None else default


def patch_for(
    change: TriageChange, *, assignee: str | None = None, now: AlertDetermination | None = None
) -> GraphIncident:
    """The ``PATCH /security/incidents/{id}`` body that makes ``change``.

    ``assignee`` is the new owner's user principal name (Defender XDR's ``assignedTo``);
    ``now`` the incident's current determination. ``UnsupportedChange`` for what Defender XDR
    does not take through Graph (a severity) or what a change lacks.
    """
    if change.kind == "assign":
        if not assignee:
            raise UnsupportedChange("Defender XDR needs the new owner's user principal name")
        return GraphIncident(assigned_to=assignee)
    if change.kind == "severity":
        raise UnsupportedChange(
            "Defender XDR does not take severity changes through Microsoft Graph; "
            "change it in the Microsoft Defender portal."
        )
    if change.kind != "status" or change.status is None:
        raise UnsupportedChange("a comment is not an incident update")
    if change.status is not IncidentStatus.CLOSED:
        return GraphIncident(status=STATUS_OUT[change.status])
    classification, determination = closing_out(change.classification, change.reason, now)
    body = GraphIncident(
        status=GraphStatus.Resolved, classification=classification, determination=determination
    )
    if change.comment:
        body.resolving_comment = change.comment
    return body
