"""Realistic Sentinel incidents, alerts and entities (api-version 2025-12-01) for the ARM sandbox.

Generated incidents follow ``GetIncidentById.json``; alerts and entities follow
``GetAllIncidentAlerts.json`` and ``GetAllIncidentEntities.json``. Every body validates
against the swagger. Generation is deterministic for a given ``random.Random``.
"""

from __future__ import annotations

import datetime
import random
import uuid
from dataclasses import dataclass
from typing import Any

from sandbox.arm_schema import load_example

PORTAL_URL = "https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident"
"""Prefix of an incident's ``incidentUrl``; the resource id follows."""


@dataclass(frozen=True)
class Scope:
    """A Log Analytics workspace with Sentinel: subscription, resource group, workspace."""

    subscription: str
    resource_group: str
    workspace: str

    @property
    def key(self) -> tuple[str, str, str]:
        """The case-insensitive identity ARM uses for the workspace."""
        return (self.subscription.lower(), self.resource_group.lower(), self.workspace.lower())

    @property
    def provider_path(self) -> str:
        """The ARM path of ``.../providers/Microsoft.SecurityInsights`` in this workspace."""
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.OperationalInsights/workspaces/{self.workspace}"
            "/providers/Microsoft.SecurityInsights"
        )

    def incident_id(self, name: str) -> str:
        """Return the full resource id of an incident."""
        return f"{self.provider_path}/incidents/{name}"


def stamp(moment: datetime.datetime) -> str:
    """Format an instant as Sentinel does: UTC, seven fraction digits, ``Z``."""
    utc = moment.astimezone(datetime.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def new_etag() -> str:
    """Return a new incident etag: a GUID inside literal double quotes."""
    return f'"{uuid.uuid4()}"'


@dataclass(frozen=True)
class _Scenario:
    """A kind of attack: incident title and description, tactics, product, alert names."""

    title: str
    description: str
    tactics: tuple[str, ...]
    product: str
    alerts: tuple[str, ...]


_SCENARIOS = (
    _Scenario(
        "Multi-stage attack: suspicious sign-in followed by mailbox rule creation",
        "A risky sign-in was followed by a new inbox forwarding rule.",
        ("InitialAccess", "Persistence"),
        "Azure Active Directory Identity Protection",
        ("Unfamiliar sign-in properties", "Suspicious inbox forwarding rule"),
    ),
    _Scenario(
        "Ransomware activity detected on FIN-SRV-02",
        "File encryption patterns and shadow copy deletion were observed.",
        ("Impact", "Execution"),
        "Microsoft Defender for Endpoint",
        ("Ransomware behavior detected", "Shadow copy deletion"),
    ),
    _Scenario(
        "Possible credential theft via LSASS access",
        "A process read LSASS memory on a domain-joined host.",
        ("CredentialAccess",),
        "Microsoft Defender for Endpoint",
        ("Suspicious access to LSASS service memory",),
    ),
    _Scenario(
        "Mass download by a departing employee",
        "An account downloaded an unusual number of files from SharePoint.",
        ("Exfiltration", "Collection"),
        "Microsoft Defender for Cloud Apps",
        ("Mass download by a single user", "Unusual file download"),
    ),
    _Scenario(
        "Brute force attack against Azure portal",
        "Many failed sign-ins were followed by a successful one.",
        ("CredentialAccess", "InitialAccess"),
        "Azure Sentinel",
        ("Failed sign-ins followed by success",),
    ),
)
_SEVERITIES = ("High", "Medium", "Medium", "Low", "Informational")
_PEOPLE = (
    ("adele.vance", "Adele Vance"),
    ("megan.bowen", "Megan Bowen"),
    ("alex.wilber", "Alex W"),
)


def _alert(
    scope: Scope, rng: random.Random, name: str, scenario: _Scenario, at: str
) -> dict[str, Any]:
    """Return one SecurityAlert entity raised at ``at``."""
    alert_id = str(uuid.UUID(int=rng.getrandbits(128)))
    return {
        "id": f"{scope.provider_path}/Entities/{alert_id}",
        "name": alert_id,
        "type": "Microsoft.SecurityInsights/Entities",
        "kind": "SecurityAlert",
        "properties": {
            "systemAlertId": alert_id,
            "tactics": list(scenario.tactics),
            "alertDisplayName": name,
            "confidenceLevel": "Unknown",
            "severity": rng.choice(("High", "Medium", "Low")),
            "vendorName": "Microsoft",
            "productName": scenario.product,
            "alertType": name.replace(" ", ""),
            "processingEndTime": at,
            "status": "New",
            "endTimeUtc": at,
            "startTimeUtc": at,
            "timeGenerated": at,
            "resourceIdentifiers": [
                {
                    "type": "LogAnalytics",
                    "workspaceId": str(uuid.UUID(int=rng.getrandbits(128))),
                    "subscriptionId": scope.subscription,
                    "resourceGroup": scope.resource_group,
                }
            ],
            "additionalData": {"AlertMessageEnqueueTime": at},
            "friendlyName": name,
        },
    }


def _entity(
    scope: Scope, rng: random.Random, kind: str, properties: dict[str, Any]
) -> dict[str, Any]:
    """Return one entity of ``kind``."""
    entity_id = str(uuid.UUID(int=rng.getrandbits(128)))
    return {
        "id": f"{scope.provider_path}/Entities/{entity_id}",
        "name": entity_id,
        "type": "Microsoft.SecurityInsights/Entities",
        "kind": kind,
        "properties": properties,
    }


def _entities(scope: Scope, rng: random.Random, number: int) -> list[dict[str, Any]]:
    """Return an account, a host and an IP address involved in an incident."""
    login, display = rng.choice(_PEOPLE)
    host = f"WKS-{number:04d}"
    address = f"203.0.113.{rng.randint(1, 254)}"
    return [
        _entity(
            scope,
            rng,
            "Account",
            {
                "friendlyName": login,
                "accountName": login,
                "upnSuffix": "contoso.com",
                "displayName": display,
                "aadUserId": str(uuid.UUID(int=rng.getrandbits(128))),
            },
        ),
        _entity(
            scope,
            rng,
            "Host",
            {
                "friendlyName": host,
                "hostName": host,
                "dnsDomain": "contoso.com",
                "osFamily": "Windows",
            },
        ),
        _entity(scope, rng, "Ip", {"friendlyName": address, "address": address}),
    ]


def entities_metadata(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the ``metaData`` aggregation of an entity list (count per kind)."""
    counts: dict[str, int] = {}
    for entity in entities:
        counts[entity["kind"]] = counts.get(entity["kind"], 0) + 1
    return [{"entityKind": kind, "count": count} for kind, count in counts.items()]


@dataclass
class Generated:
    """A generated incident resource with its alerts and entities."""

    resource: dict[str, Any]
    alerts: list[dict[str, Any]]
    entities: list[dict[str, Any]]


def _properties(
    scope: Scope, rng: random.Random, number: int, name: str, now: datetime.datetime
) -> tuple[dict[str, Any], _Scenario]:
    """Return the properties of a new incident (created in the last 14 days) and its scenario."""
    scenario = rng.choice(_SCENARIOS)
    created = now - datetime.timedelta(minutes=rng.randint(5, 14 * 24 * 60))
    modified = min(now, created + datetime.timedelta(minutes=rng.randint(0, 240)))
    properties: dict[str, Any] = {
        "title": scenario.title,
        "description": scenario.description,
        "severity": rng.choice(_SEVERITIES),
        "status": rng.choice(("New", "New", "Active")),
        "owner": {},
        "labels": [],
        "incidentNumber": number,
        "incidentUrl": PORTAL_URL + scope.incident_id(name),
        "providerName": "Azure Sentinel",
        "providerIncidentId": str(number),
        "relatedAnalyticRuleIds": [],
        "createdTimeUtc": stamp(created),
        "lastModifiedTimeUtc": stamp(modified),
        "firstActivityTimeUtc": stamp(created - datetime.timedelta(minutes=rng.randint(5, 60))),
        "lastActivityTimeUtc": stamp(created - datetime.timedelta(minutes=rng.randint(0, 4))),
        "additionalData": {
            "alertsCount": len(scenario.alerts),
            "bookmarksCount": 0,
            "commentsCount": 0,
            "alertProductNames": [scenario.product],
            "tactics": list(scenario.tactics),
        },
    }
    return properties, scenario


def generate_incident(
    scope: Scope, rng: random.Random, number: int, now: datetime.datetime
) -> Generated:
    """Return a realistic incident created in the last 14 days, with alerts and entities."""
    name = str(uuid.UUID(int=rng.getrandbits(128)))
    properties, scenario = _properties(scope, rng, number, name, now)
    raised = properties["lastActivityTimeUtc"]
    alerts = [_alert(scope, rng, title, scenario, raised) for title in scenario.alerts]
    resource = {
        "id": scope.incident_id(name),
        "name": name,
        "type": "Microsoft.SecurityInsights/incidents",
        "etag": new_etag(),
        "properties": properties,
    }
    return Generated(resource, alerts, _entities(scope, rng, number))


EXAMPLE_SCOPE = Scope("d0cfe6b2-9ac0-4464-9919-dccaee2e48c0", "myRg", "myWorkspace")
"""The workspace every official example lives in."""


def example_incidents() -> list[tuple[Generated, list[dict[str, Any]]]]:
    """Return the official examples' incidents: (incident with alerts/entities, comments).

    ``73e01a99-...`` is ``GetIncidentById.json`` with the comment of
    ``GetAllIncidentComments.json``; ``afbd324f-...`` (whose body no example shows) is
    generated, with the alerts and entities of the two list examples.
    """
    body = load_example("GetIncidentById.json")["responses"]["200"]["body"]
    comments = load_example("GetAllIncidentComments.json")["responses"]["200"]["body"]["value"]
    alerts = load_example("GetAllIncidentAlerts.json")["responses"]["200"]["body"]["value"]
    entities = load_example("GetAllIncidentEntities.json")["responses"]["200"]["body"]["entities"]
    other = generate_incident(
        EXAMPLE_SCOPE,
        random.Random(3178),  # noqa: S311 - sample data
        3178,
        datetime.datetime(2020, 7, 20, 18, 30, tzinfo=datetime.timezone.utc),
    )
    name = "afbd324f-6c48-459c-8710-8d1e1cd03812"
    other.resource.update(id=EXAMPLE_SCOPE.incident_id(name), name=name)
    other.resource["properties"]["incidentUrl"] = PORTAL_URL + EXAMPLE_SCOPE.incident_id(name)
    return [
        (Generated(body, [], []), comments),
        (Generated(other.resource, alerts, entities), []),
    ]
