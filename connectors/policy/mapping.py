"""Pure mapping of Policy Insights' policy-state records (api-version 2024-10-01).

Reads the ``PolicyState`` records of ``PolicyStates_ListQueryResults*`` answers
(``contracts/azure-policyinsights-policystates-2024-10-01.swagger.json``) into Warden's
``core.policy_states.PolicyState``. The service puts JSON ``null`` into string-typed
fields (``policyDefinitionReferenceId``, ``effectiveParameters``, the policy-set fields,
...; see the official examples), so every field but the three ids, the state and the
timestamp may be null or missing. Nothing here does I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import InvalidPayload
from core.policy_states import Attestation, AttestationRequest, Evidence, PolicyState


class _Record(BaseModel):
    """The fields of a wire ``PolicyState`` Warden keeps (wire names; others ignored)."""

    model_config = ConfigDict(extra="ignore")

    resourceId: str = Field(min_length=1)  # noqa: N815 - the wire's own names
    policyAssignmentId: str = Field(min_length=1)  # noqa: N815
    policyDefinitionId: str = Field(min_length=1)  # noqa: N815
    complianceState: str = Field(min_length=1)  # noqa: N815
    timestamp: datetime
    policyDefinitionReferenceId: str | None = None  # noqa: N815
    policySetDefinitionId: str | None = None  # noqa: N815
    subscriptionId: str | None = None  # noqa: N815
    resourceGroup: str | None = None  # noqa: N815
    resourceType: str | None = None  # noqa: N815
    resourceLocation: str | None = None  # noqa: N815
    policyAssignmentName: str | None = None  # noqa: N815
    policyDefinitionAction: str | None = None  # noqa: N815


def _blank_is_none(value: str | None) -> str | None:
    """An empty string means "not set" as much as a null does."""
    return value if value else None


def policy_state_from_record(record: Any) -> PolicyState:
    """The ``PolicyState`` one wire record describes; ``InvalidPayload`` names a bad field.

    A timestamp without an offset is read as UTC (the service writes ``...Z``).
    """
    if not isinstance(record, dict):
        raise InvalidPayload("a policy state record must be a JSON object", field="")
    try:
        parsed = _Record.model_validate(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise InvalidPayload(f"a policy state: {field}: {first['msg']}", field=field) from None
    stamp = parsed.timestamp
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return PolicyState(
        resource_id=parsed.resourceId,
        policy_assignment_id=parsed.policyAssignmentId,
        policy_definition_id=parsed.policyDefinitionId,
        definition_reference_id=_blank_is_none(parsed.policyDefinitionReferenceId),
        policy_set_definition_id=_blank_is_none(parsed.policySetDefinitionId),
        compliance_state=parsed.complianceState,
        timestamp=stamp.astimezone(UTC),
        subscription_id=_blank_is_none(parsed.subscriptionId),
        resource_group=_blank_is_none(parsed.resourceGroup),
        resource_type=_blank_is_none(parsed.resourceType),
        location=_blank_is_none(parsed.resourceLocation),
        assignment_name=_blank_is_none(parsed.policyAssignmentName),
        effect=_blank_is_none(parsed.policyDefinitionAction),
    )


# Attestations (Attestations_CreateOrUpdateAt*; azure-rest-api-specs stable/2024-10-01/
# attestations.json, which is not in contracts/).


def _time(value: datetime) -> str:
    """A date-time as ARM takes it (UTC, ``Z``); a naive one is read as UTC."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def attestation_body(request: AttestationRequest) -> dict[str, Any]:
    """The PUT body of an attestation: ``{"properties": {...}}`` without unset fields."""
    properties: dict[str, Any] = {
        "policyAssignmentId": request.policy_assignment_id,
        "complianceState": request.compliance_state.value,
        "policyDefinitionReferenceId": request.definition_reference_id,
        "comments": request.comments,
        "owner": request.owner,
        "assessmentDate": _time(request.assessment_date) if request.assessment_date else None,
        "expiresOn": _time(request.expires_on) if request.expires_on else None,
    }
    if request.evidence:
        properties["evidence"] = [
            {k: v for k, v in (("description", e.description), ("sourceUri", e.source_uri)) if v}
            for e in request.evidence
        ]
    return {"properties": {k: v for k, v in properties.items() if v is not None}}


class _Evidence(BaseModel):
    model_config = ConfigDict(extra="ignore")

    description: str | None = None
    sourceUri: str | None = None  # noqa: N815


class _AttestationProperties(BaseModel):
    model_config = ConfigDict(extra="ignore")

    policyAssignmentId: str = Field(min_length=1)  # noqa: N815
    complianceState: str | None = None  # noqa: N815
    policyDefinitionReferenceId: str | None = None  # noqa: N815
    provisioningState: str | None = None  # noqa: N815
    lastComplianceStateChangeAt: datetime | None = None  # noqa: N815
    evidence: list[_Evidence] | None = None


class _AttestationResource(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    properties: _AttestationProperties


def attestation_from_resource(resource: Any) -> Attestation:
    """The ``Attestation`` an ARM attestation resource describes; ``InvalidPayload`` if bad."""
    if not isinstance(resource, dict):
        raise InvalidPayload("an attestation must be a JSON object", field="")
    try:
        parsed = _AttestationResource.model_validate(resource)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise InvalidPayload(f"an attestation: {field}: {first['msg']}", field=field) from None
    props = parsed.properties
    return Attestation(
        id=parsed.id,
        name=parsed.name,
        policy_assignment_id=props.policyAssignmentId,
        compliance_state=props.complianceState,
        definition_reference_id=_blank_is_none(props.policyDefinitionReferenceId),
        provisioning_state=props.provisioningState,
        last_state_change=props.lastComplianceStateChangeAt,
        evidence=tuple(
            Evidence(description=e.description, source_uri=e.sourceUri)
            for e in props.evidence or ()
        ),
    )
