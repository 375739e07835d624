"""Policy Insights attestations (api-version 2024-10-01) in the ARM sandbox.

``PUT|GET|DELETE {scope}/providers/Microsoft.PolicyInsights/attestations/{name}`` at
subscription, resource-group and resource scope. The shape follows Azure/azure-rest-api-specs
``specification/policyinsights/resource-manager/Microsoft.PolicyInsights/stable/2024-10-01/
attestations.json`` (commit 77ffeb82; not in ``contracts/``): an ``Attestation`` resource
whose ``properties`` need ``policyAssignmentId``; ``complianceState`` is Compliant,
NonCompliant or Unknown; ``evidence`` is a list of ``{description, sourceUri}``. The PUT is
a long-running operation in the swagger; the sandbox completes it at once (201 created,
200 updated, ``provisioningState: Succeeded``). DELETE answers 200, or 204 if there was
nothing. An attestation sets the compliance of the resource's records under its assignment
whose effect is ``manual``, as Azure Policy does for manual policies.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

from sandbox.arm_records import ArmError

ATTESTATION_TYPE = "Microsoft.PolicyInsights/attestations"
"""The resource type of an attestation."""

_STATES = ("Compliant", "NonCompliant", "Unknown")
_STRINGS = ("policyAssignmentId", "policyDefinitionReferenceId", "owner", "comments")
_TIMES = ("expiresOn", "assessmentDate")
_READ_ONLY = ("provisioningState", "lastComplianceStateChangeAt")


def _stamp(now: datetime.datetime) -> str:
    """A timestamp as ARM writes it."""
    return now.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _evidence_error(evidence: object) -> str | None:
    """Why ``evidence`` is not a list of AttestationEvidence, or None."""
    if not isinstance(evidence, list):
        return "properties.evidence must be an array"
    for index, item in enumerate(evidence):
        if not isinstance(item, dict) or any(
            not isinstance(item.get(key), (str, type(None))) for key in ("description", "sourceUri")
        ):
            return f"properties.evidence[{index}] must be {{description, sourceUri}} strings"
    return None


def attestation_error(body: object) -> str | None:
    """Why a PUT body is not an Attestation ARM would take, or None."""
    properties = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(properties, dict):
        return "The request body must be an attestation with 'properties'."
    if not isinstance(properties.get("policyAssignmentId"), str) or not properties.get(
        "policyAssignmentId"
    ):
        return "properties.policyAssignmentId is required."
    for key in _STRINGS:
        if not isinstance(properties.get(key), (str, type(None))):
            return f"properties.{key} must be a string"
    state = properties.get("complianceState")
    if state is not None and state not in _STATES:
        return f"properties.complianceState must be one of {', '.join(_STATES)}."
    for key in _TIMES:
        value = properties.get(key)
        if value is not None:
            try:
                datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                return f"properties.{key} must be an ISO 8601 date-time"
    if properties.get("evidence") is not None:
        return _evidence_error(properties["evidence"])
    return None


class Attestations:
    """The attestations the sandbox holds, by lower-cased ARM id. Not thread-safe."""

    def __init__(self) -> None:
        """Start empty."""
        self.items: dict[str, dict[str, Any]] = {}

    def put(
        self, scope: str, name: str, body: Any, now: datetime.datetime
    ) -> tuple[dict[str, Any], bool]:
        """Create or replace an attestation; 400 for a body ARM would refuse."""
        problem = attestation_error(body)
        if problem is not None:
            raise ArmError(400, "InvalidRequestContent", problem)
        resource_id = f"{scope}/providers/{ATTESTATION_TYPE}/{name}"
        old = self.items.get(resource_id.lower())
        given = {k: v for k, v in body["properties"].items() if k not in _READ_ONLY}
        given.setdefault("complianceState", "Compliant")
        last, created = _stamp(now), _stamp(now)
        if old is not None:
            created = old["systemData"]["createdAt"]
            if old["properties"]["complianceState"] == given["complianceState"]:
                last = old["properties"]["lastComplianceStateChangeAt"]
        resource = {
            "id": resource_id,
            "name": name,
            "type": ATTESTATION_TYPE,
            "systemData": {"createdAt": created, "lastModifiedAt": _stamp(now)},
            "properties": {
                **given,
                "provisioningState": "Succeeded",
                "lastComplianceStateChangeAt": last,
            },
        }
        self.items[resource_id.lower()] = resource
        return copy.deepcopy(resource), old is None

    def get(self, scope: str, name: str) -> dict[str, Any]:
        """The attestation; ARM's 404 if there is none."""
        found = self.items.get(f"{scope}/providers/{ATTESTATION_TYPE}/{name}".lower())
        if found is None:
            raise ArmError(404, "AttestationNotFound", f"The attestation '{name}' was not found.")
        return copy.deepcopy(found)

    def delete(self, scope: str, name: str) -> bool:
        """Remove the attestation; whether there was one."""
        key = f"{scope}/providers/{ATTESTATION_TYPE}/{name}".lower()
        return self.items.pop(key, None) is not None

    def clear(self) -> None:
        """Forget every attestation."""
        self.items.clear()


def apply_to_states(
    records: dict[str, dict[str, Any]], scope: str, attestation: dict[str, Any], stamp: str
) -> None:
    """Set the attested state on the scope's records of ``manual`` policies of its assignment."""
    properties = attestation["properties"]
    assignment = str(properties["policyAssignmentId"]).lower()
    reference = properties.get("policyDefinitionReferenceId")
    for record in records.values():
        resource = str(record.get("resourceId", "")).lower()
        inside = resource == scope.lower() or resource.startswith(scope.lower() + "/")
        manual = str(record.get("policyDefinitionAction") or "").lower() == "manual"
        same = str(record.get("policyAssignmentId", "")).lower() == assignment
        ours = reference in (None, record.get("policyDefinitionReferenceId"))
        if inside and manual and same and ours:
            state = properties["complianceState"]
            record.update(complianceState=state, isCompliant=state == "Compliant", timestamp=stamp)
