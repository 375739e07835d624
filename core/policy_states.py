"""Warden's view of Azure Policy compliance: one resource evaluated against one assignment.

A vendor's policy-state record becomes a ``PolicyState`` in ``connectors/policy/mapping.py``;
evidence requests opened from non-compliance, and the "resolved by policy" check that
closes them, read only this model.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ComplianceState(StrEnum):
    """The compliance states Azure Policy reports (others may come: the field is open)."""

    COMPLIANT = "Compliant"
    NON_COMPLIANT = "NonCompliant"
    CONFLICT = "Conflict"
    EXEMPT = "Exempt"
    UNKNOWN = "Unknown"
    ERROR = "Error"
    PROTECTED = "Protected"


class PolicyState(BaseModel):
    """The latest evaluation of one resource against one policy (of an assignment).

    Ids are kept as the service spells them; compare them case-insensitively (ARM ids
    are). ``definition_reference_id`` names the policy inside an initiative (policy set)
    and is None for a single-policy assignment. ``compliance_state`` is a
    ``ComplianceState`` value or, for a state Warden does not know yet, the service's text.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    resource_id: str = Field(min_length=1)
    policy_assignment_id: str = Field(min_length=1)
    policy_definition_id: str = Field(min_length=1)
    definition_reference_id: str | None = None
    policy_set_definition_id: str | None = None
    compliance_state: str = Field(min_length=1)
    timestamp: datetime
    subscription_id: str | None = None
    resource_group: str | None = None
    resource_type: str | None = None
    location: str | None = None
    assignment_name: str | None = None
    effect: str | None = None

    @property
    def is_compliant(self) -> bool:
        """True when the resource complies (or is exempt): nothing for a reviewer to chase."""
        return self.compliance_state in (ComplianceState.COMPLIANT, ComplianceState.EXEMPT)

    @property
    def key(self) -> str:
        """A stable identity of the pair: lower-cased resource id, assignment id, reference."""
        parts = (self.resource_id, self.policy_assignment_id, self.definition_reference_id or "")
        return "|".join(part.lower() for part in parts)


class AttestationState(StrEnum):
    """The states an attestation may set (Azure Policy's attestation ``complianceState``)."""

    COMPLIANT = "Compliant"
    NON_COMPLIANT = "NonCompliant"
    UNKNOWN = "Unknown"


class Evidence(BaseModel):
    """One piece of evidence behind an attestation: what it is and where it lives."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str | None = None
    source_uri: str | None = None


class AttestationRequest(BaseModel):
    """What a reviewer's decision attests about one resource under one policy assignment.

    Azure Policy uses it to set the compliance of manual policies; the evidence links to
    where the files are recorded (the SharePoint record, for instance).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    policy_assignment_id: str = Field(min_length=1)
    compliance_state: AttestationState
    definition_reference_id: str | None = None
    evidence: tuple[Evidence, ...] = ()
    comments: str | None = None
    owner: str | None = None
    assessment_date: datetime | None = None
    expires_on: datetime | None = None


class Attestation(BaseModel):
    """An attestation as Azure Policy keeps it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    policy_assignment_id: str = Field(min_length=1)
    compliance_state: str | None = None
    definition_reference_id: str | None = None
    provisioning_state: str | None = None
    last_state_change: datetime | None = None
    evidence: tuple[Evidence, ...] = ()
