"""Request-scoped values of the ARM sandbox and its case-insensitive ARM path table.

ARM treats path segments as case-insensitive, which aiohttp's router does not, so every
``/subscriptions/...`` request goes to one route and is matched here against the
Sentinel incidents paths of the swagger (operation ids as names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sandbox.arm_records import RequestRecord, SandboxError


@dataclass(frozen=True)
class Body:
    """A request body: its parsed JSON, or the error to answer if a route needs it."""

    value: Any = None
    error: SandboxError | None = None


@dataclass(frozen=True)
class ArmMatch:
    """What an ARM path addresses: the operation id and the path's parameters.

    ``allowed`` lists the methods served on the path (empty: the path is not served);
    ``operation`` is "Unknown" when the path or the method is not served.
    """

    operation: str
    subscription: str = ""
    resource_group: str = ""
    workspace: str = ""
    incident: str | None = None
    child: str | None = None
    allowed: tuple[str, ...] = ()


BODY_KEY = web.RequestKey("arm_sandbox_body", Body)
RECORD_KEY = web.RequestKey("arm_sandbox_record", RequestRecord)
CLAIMS_KEY = web.RequestKey("arm_sandbox_claims", dict)
MATCH_KEY = web.RequestKey("arm_sandbox_match", ArmMatch)

_BASE = (
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.OperationalInsights/workspaces/(?P<ws>[^/]+)"
    r"/providers/Microsoft\.SecurityInsights/incidents"
)
_INCIDENT = _BASE + r"/(?P<incident>[^/]+)"
_TABLE: tuple[tuple[re.Pattern[str], dict[str, str]], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), operations)
    for pattern, operations in (
        (_BASE + r"/?$", {"GET": "Incidents_List"}),
        (
            _INCIDENT + r"$",
            {
                "GET": "Incidents_Get",
                "PUT": "Incidents_CreateOrUpdate",
                "DELETE": "Incidents_Delete",
            },
        ),
        (_INCIDENT + r"/alerts$", {"POST": "Incidents_ListAlerts"}),
        (_INCIDENT + r"/entities$", {"POST": "Incidents_ListEntities"}),
        (_INCIDENT + r"/comments/?$", {"GET": "IncidentComments_List"}),
        (
            _INCIDENT + r"/comments/(?P<child>[^/]+)$",
            {
                "GET": "IncidentComments_Get",
                "PUT": "IncidentComments_CreateOrUpdate",
                "DELETE": "IncidentComments_Delete",
            },
        ),
    )
)


def match_arm(method: str, path: str) -> ArmMatch:
    """Return what an ARM request addresses (operation "Unknown" if it is not served)."""
    for pattern, operations in _TABLE:
        found = pattern.match(path)
        if found is None:
            continue
        groups = found.groupdict()
        return ArmMatch(
            operation=operations.get(method.upper(), "Unknown"),
            subscription=groups["sub"],
            resource_group=groups["rg"],
            workspace=groups["ws"],
            incident=groups.get("incident"),
            child=groups.get("child"),
            allowed=tuple(operations),
        )
    return ArmMatch("Unknown")


def request_json(request: web.Request) -> Any:
    """Return the request's parsed JSON body (None if empty), or raise its body error."""
    body = request[BODY_KEY]
    if body.error is not None:
        raise body.error
    return body.value
