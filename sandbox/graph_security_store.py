"""Defender XDR incidents and alerts of the Graph sandbox (``security/incidents``, ``alerts_v2``).

Resources are kept as Graph answers them (``microsoft.graph.security.incident`` and
``alert``), with realistic seed data. An incident can be made read-only for Warden
(``read_only``): Graph then answers its PATCH and comments with 403, as it does when the
app's role or the incident's device group does not let it write. Timestamps come from the
ARM sandbox's clock and only grow, so ``lastUpdateDateTime`` orders every change.
"""

from __future__ import annotations

import copy
import datetime
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Now = Callable[[], datetime.datetime]

TENANT = "b3c7c0c4-6a1f-4f7e-9a8e-2f0d6c1e9a51"
PORTAL = "https://security.microsoft.com"
FIRST_ID = 2972395

STATUSES = ("active", "resolved", "inProgress", "redirected", "awaitingAction")
SEVERITIES = ("informational", "low", "medium", "high")
CLASSIFICATIONS = ("unknown", "falsePositive", "truePositive", "informationalExpectedActivity")
DETERMINATIONS = {
    "unknown": {"unknown"},
    "truePositive": {
        "apt",
        "malware",
        "securityPersonnel",
        "unwantedSoftware",
        "other",
        "multiStagedAttack",
        "compromisedAccount",
        "phishing",
        "maliciousUserActivity",
    },
    "informationalExpectedActivity": {
        "securityTesting",
        "lineOfBusinessApplication",
        "confirmedActivity",
        "other",
    },
    "falsePositive": {"notMalicious", "notEnoughDataToValidate", "other"},
}
"""The determinations Defender XDR accepts under each classification."""

WRITABLE = (
    "status",
    "assignedTo",
    "classification",
    "determination",
    "customTags",
    "description",
    "resolvingComment",
)
"""Properties ``PATCH /security/incidents/{id}`` takes; any other is refused (400)."""

_SCENARIOS = (
    (
        "Multi-stage incident involving Initial access & Command and control on one endpoint",
        "high",
        [
            ("InitialAccess", "microsoftDefenderForEndpoint"),
            ("CommandAndControl", "microsoftDefenderForEndpoint"),
        ],
    ),
    (
        "Email reported by user as malware or phish involving one user",
        "medium",
        [("InitialAccess", "microsoftDefenderForOffice365")],
    ),
    (
        "Suspicious sign-in followed by mass file download",
        "medium",
        [
            ("CredentialAccess", "azureAdIdentityProtection"),
            ("Exfiltration", "microsoftDefenderForCloudApps"),
        ],
    ),
    (
        "Ransomware-linked emerging threat activity on FIN-SRV-02",
        "high",
        [("Impact", "microsoftDefenderForEndpoint"), ("Execution", "microsoftDefenderForEndpoint")],
    ),
    (
        "Unusual LDAP reconnaissance by a service account",
        "low",
        [("Discovery", "microsoftDefenderForIdentity")],
    ),
)


def stamp(moment: datetime.datetime) -> str:
    """Graph's DateTimeOffset text (UTC, 7 fractional digits are not needed)."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class DefenderIncident:
    """One incident (without ``alerts``), its alerts, and whether Warden may write to it."""

    resource: dict[str, Any]
    alerts: list[dict[str, Any]] = field(default_factory=list)
    read_only: bool = False

    def render(self, *, expand_alerts: bool = False) -> dict[str, Any]:
        """The incident as Graph answers it (with ``alerts`` when expanded)."""
        answer = copy.deepcopy(self.resource)
        if expand_alerts:
            answer["alerts"] = copy.deepcopy(self.alerts)
        return answer


class SecurityStore:
    """Every Defender XDR incident of the sandbox tenant, by id."""

    def __init__(self, now: Now) -> None:
        """An empty store on the sandbox clock ``now``."""
        self.now = now
        self.incidents: dict[str, DefenderIncident] = {}
        self.next_id = FIRST_ID
        self._last = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)

    def tick(self) -> str:
        """A timestamp later than every earlier one."""
        moment = max(self.now(), self._last + datetime.timedelta(microseconds=1))
        self._last = moment
        return stamp(moment)

    def clear(self) -> None:
        """Forget every incident."""
        self.incidents.clear()

    def add_incident(
        self, overrides: dict[str, Any] | None = None, *, rng: random.Random | None = None
    ) -> dict[str, Any]:
        """Raise a new realistic incident now (``overrides`` replace properties); returns it."""
        chosen = rng or random.Random()  # noqa: S311 - sample data, not secrets
        title, severity, alerts = chosen.choice(_SCENARIOS)
        incident_id = str(self.next_id)
        self.next_id += 1
        now = self.tick()
        resource: dict[str, Any] = {
            "@odata.type": "#microsoft.graph.security.incident",
            "id": incident_id,
            "incidentWebUrl": f"{PORTAL}/incidents/{incident_id}?tid={TENANT}",
            "redirectIncidentId": None,
            "tenantId": TENANT,
            "displayName": title,
            "createdDateTime": now,
            "lastUpdateDateTime": now,
            "assignedTo": None,
            "classification": "unknown",
            "determination": "unknown",
            "status": "active",
            "severity": severity,
            "customTags": [],
            "systemTags": [],
            "description": None,
            "summary": f"{title}. Generated by the Warden sandbox.",
            "lastModifiedBy": "Microsoft 365 Defender-AlertCorrelation",
            "resolvingComment": None,
            "priorityScore": chosen.randint(10, 90),
            "comments": [],
        }
        resource.update(overrides or {})
        made = DefenderIncident(resource)
        made.alerts = [self._alert(made, category, source, now) for category, source in alerts]
        self.incidents[incident_id] = made
        return made.render(expand_alerts=True)

    def _alert(
        self, incident: DefenderIncident, category: str, source: str, now: str
    ) -> dict[str, Any]:
        """A new alert of ``incident``."""
        alert_id = f"da{uuid.uuid4().int % 10**18:018d}_{uuid.uuid4().int % 10**9}"
        return {
            "@odata.type": "#microsoft.graph.security.alert",
            "id": alert_id,
            "providerAlertId": alert_id[2:20],
            "incidentId": incident.resource["id"],
            "status": "new",
            "severity": incident.resource["severity"],
            "classification": "unknown",  # an enum: Graph answers "unknown", never null
            "determination": "unknown",
            "serviceSource": source,
            "detectionSource": "antivirus" if "Endpoint" in source else "automatedInvestigation",
            "title": f"{category} activity observed",
            "description": f"Activity that matches {category} was detected.",
            "category": category,
            "assignedTo": None,
            "alertWebUrl": f"{PORTAL}/alerts/{alert_id}?tid={TENANT}",
            "incidentWebUrl": incident.resource["incidentWebUrl"],
            "tenantId": TENANT,
            "mitreTechniques": [],
            "createdDateTime": now,
            "lastUpdateDateTime": now,
            "firstActivityDateTime": now,
            "lastActivityDateTime": now,
            "comments": [],
            "evidence": [],
            "systemTags": [],
        }

    def seed(self, count: int, *, random_seed: int | None = None) -> list[dict[str, Any]]:
        """Raise ``count`` incidents; returns them."""
        rng = random.Random(random_seed)  # noqa: S311 - sample data, not secrets
        return [self.add_incident(rng=rng) for _ in range(count)]

    def get(self, incident_id: str) -> DefenderIncident | None:
        """The incident with this id, if any."""
        return self.incidents.get(incident_id)

    def updated_since(self, moment: datetime.datetime, *, strict: bool) -> list[DefenderIncident]:
        """Incidents updated at (unless ``strict``) or after ``moment``, oldest update first."""
        found = []
        for incident in self.incidents.values():
            updated = parse_instant(incident.resource["lastUpdateDateTime"])
            if updated > moment or (updated == moment and not strict):
                found.append(incident)
        return sorted(
            found, key=lambda i: (parse_instant(i.resource["lastUpdateDateTime"]), i.resource["id"])
        )

    def update(self, incident: DefenderIncident, changes: dict[str, Any], by: str) -> None:
        """Apply checked ``changes`` as ``by`` did (a new ``lastUpdateDateTime``)."""
        incident.resource.update(copy.deepcopy(changes))
        incident.resource["lastModifiedBy"] = by
        incident.resource["lastUpdateDateTime"] = self.tick()

    def comment(self, incident: DefenderIncident, text: str, by: str) -> list[dict[str, Any]]:
        """Add a comment as ``by``; returns every comment of the incident."""
        comments = incident.resource.setdefault("comments", [])
        entry = {
            "@odata.type": "#microsoft.graph.security.alertComment",
            "comment": text,
            "createdByDisplayName": by,
            "createdDateTime": self.tick(),
        }
        comments.append(entry)
        incident.resource["lastUpdateDateTime"] = entry["createdDateTime"]
        return copy.deepcopy(comments)

    def alerts(self, incident_id: str | None) -> list[dict[str, Any]]:
        """Every alert (of one incident when ``incident_id`` is given), newest first."""
        found = [
            copy.deepcopy(alert)
            for incident in self.incidents.values()
            if incident_id is None or incident.resource["id"] == incident_id
            for alert in incident.alerts
        ]
        return sorted(found, key=lambda a: a["createdDateTime"], reverse=True)


def parse_instant(text: str) -> datetime.datetime:
    """A DateTimeOffset literal as an aware datetime (``Z`` or an offset)."""
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment
