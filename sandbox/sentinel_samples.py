"""Realistic Microsoft Sentinel incident resources (ARM, api-version 2025-12-01) for demos.

Shaped like ``contracts/examples/azure-sentinel-2025-12-01/GetIncidentById.json``; used by
``python app.py demo incident`` and by tests. No product code is imported here.
"""

from __future__ import annotations

import copy
import random
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

SUBSCRIPTION = "d0cfe6b2-9ac0-4464-9919-dccaee2e48c0"
RESOURCE_GROUP = "soc-rg"
WORKSPACE = "soc-workspace"
_SCENARIOS = (
    (
        "Multi-stage attack: suspicious sign-in followed by mailbox rule creation",
        ["InitialAccess", "Persistence"],
        ["Azure Active Directory Identity Protection"],
    ),
    (
        "Ransomware activity detected on FIN-SRV-02",
        ["Impact", "Execution"],
        ["Microsoft Defender for Endpoint"],
    ),
    (
        "Possible credential theft via LSASS access",
        ["CredentialAccess"],
        ["Microsoft Defender for Endpoint"],
    ),
    (
        "Mass download by a departing employee",
        ["Exfiltration", "Collection"],
        ["Microsoft Defender for Cloud Apps"],
    ),
)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _base_id(workspace: str) -> str:
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
        f"Microsoft.OperationalInsights/workspaces/{workspace}/providers/"
        "Microsoft.SecurityInsights/incidents/"
    )


def sample_incident(
    *,
    severity: str = "High",
    title: str | None = None,
    number: int | None = None,
    now: datetime | None = None,
    workspace: str = WORKSPACE,
) -> dict[str, Any]:
    """A new incident resource with a fresh name, as the ARM API returns it."""
    moment = now or datetime.now(timezone.utc)
    name = str(uuid.uuid4())
    scenario_title, tactics, products = random.choice(_SCENARIOS)  # noqa: S311 - sample data
    resource_id = _base_id(workspace) + name
    return {
        "id": resource_id,
        "name": name,
        "type": "Microsoft.SecurityInsights/incidents",
        "etag": f'"{uuid.uuid4()}"',
        "properties": {
            "title": title or scenario_title,
            "description": "Sample incident raised by Warden's demo command.",
            "severity": severity,
            "status": "New",
            "owner": {
                "objectId": None,
                "email": None,
                "userPrincipalName": None,
                "assignedTo": None,
            },
            "labels": [{"labelName": "demo", "labelType": "User"}],
            "incidentNumber": number or random.randint(1000, 99999),  # noqa: S311
            "incidentUrl": "https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/"
            "Incident" + resource_id,
            "providerName": "Azure Sentinel",
            "providerIncidentId": str(number or 0),
            "createdTimeUtc": _stamp(moment - timedelta(minutes=3)),
            "lastModifiedTimeUtc": _stamp(moment),
            "firstActivityTimeUtc": _stamp(moment - timedelta(minutes=20)),
            "lastActivityTimeUtc": _stamp(moment - timedelta(minutes=4)),
            "additionalData": {
                "alertsCount": 2,
                "bookmarksCount": 0,
                "commentsCount": 0,
                "alertProductNames": products,
                "tactics": tactics,
            },
        },
    }


def updated_incident(resource: dict[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
    """The next version of ``resource``: active, assigned, one more alert, a new etag."""
    moment = now or datetime.now(timezone.utc)
    result = copy.deepcopy(resource)
    props = result["properties"]
    props["status"] = "Active"
    props["owner"] = {
        "objectId": "2046feea-040d-4a46-9e2b-91c2941bfa70",
        "email": "adele.vance@contoso.com",
        "userPrincipalName": "adele.vance@contoso.com",
        "assignedTo": "Adele Vance",
    }
    props["additionalData"]["alertsCount"] = int(props["additionalData"]["alertsCount"]) + 1
    previous = datetime.fromisoformat(props["lastModifiedTimeUtc"].replace("Z", "+00:00"))
    props["lastModifiedTimeUtc"] = _stamp(max(moment, previous + timedelta(milliseconds=1)))
    result["etag"] = f'"{uuid.uuid4()}"'
    return result
