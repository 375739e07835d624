"""Warden's policy posture: where each Azure Policy requirement stands, resource by resource.

``PolicyPosture`` is a published data contract (JSON Schema in
``docs/schemas/policy-posture.schema.json``; ``write_schemas`` regenerates it), served by
``GET /api/posture``. It is derived from the evidence requests opened from Azure Policy
non-compliance, the newest one per (requirement, resource) that was not cancelled:

- ``pending-evidence``: the request is open, handed in, or sent back for changes;
- ``attested-compliant``: reviewers approved the evidence; Warden writes an Azure Policy
  attestation (``Compliant``) for the resource under each of the requirement's assignments,
  and under each assignment that evaluates it under one of the requirement's definitions;
- ``non-compliant``: reviewers rejected the evidence; the resource stays non-compliant;
- ``resolved-by-policy``: Azure Policy itself reported the resource compliant again.

An attestation Warden writes is valid for ``ATTESTATION_VALIDITY`` after the request's due
date (``expiresOn``); Azure Policy then treats the manual policy as unattested again.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from core.evidence_models import RequestStatus
from core.itsm import SCHEMA_DIR, schema_document

ATTESTATION_VALIDITY = timedelta(days=90)
"""How long an attestation stays valid after the request's due date (one quarter)."""


class PostureStatus(StrEnum):
    """Where one resource stands under one policy of a requirement."""

    ATTESTED_COMPLIANT = "attested-compliant"
    NON_COMPLIANT = "non-compliant"
    PENDING_EVIDENCE = "pending-evidence"
    RESOLVED_BY_POLICY = "resolved-by-policy"


_BY_REQUEST = {
    RequestStatus.OPEN: PostureStatus.PENDING_EVIDENCE,
    RequestStatus.SUBMITTED: PostureStatus.PENDING_EVIDENCE,
    RequestStatus.CHANGES_REQUESTED: PostureStatus.PENDING_EVIDENCE,
    RequestStatus.APPROVED: PostureStatus.ATTESTED_COMPLIANT,
    RequestStatus.REJECTED: PostureStatus.NON_COMPLIANT,
    RequestStatus.RESOLVED_BY_POLICY: PostureStatus.RESOLVED_BY_POLICY,
}


def posture_status(status: RequestStatus) -> PostureStatus | None:
    """The posture a request in ``status`` states; None for a cancelled one (it states none)."""
    return _BY_REQUEST.get(status)


def attestation_expiry(due: date) -> datetime:
    """When an attestation for a request due on ``due`` expires: ``ATTESTATION_VALIDITY`` on."""
    return datetime.combine(due, time(0, 0), tzinfo=UTC) + ATTESTATION_VALIDITY


class PolicyPosture(BaseModel):
    """One resource's standing under one Azure Policy assignment (or definition) of a
    requirement, as Warden's evidence records say (camelCase on the wire)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    policy_id: str = Field(
        alias="policyId",
        min_length=1,
        description="The policy assignment id (a definition id when the requirement names "
        "no assignment).",
    )
    requirement_id: str = Field(
        alias="requirementId", min_length=1, description="The catalog requirement."
    )
    resource_id: str = Field(
        alias="resourceId", min_length=1, description="The ARM id of the resource evaluated."
    )
    status: PostureStatus = Field(description="Where the resource stands (see PostureStatus).")
    evidence_ref: str = Field(
        alias="evidenceRef",
        min_length=1,
        description="The approved evidence's SharePoint web URL (else the link handed in); "
        "the evidence request id otherwise.",
    )
    evaluated_at_utc: datetime = Field(
        alias="evaluatedAtUtc", description="When the request last changed (UTC)."
    )


SCHEMAS: dict[str, type[BaseModel]] = {"policy-posture.schema.json": PolicyPosture}
"""The published contract: file name in ``docs/schemas`` → model."""


def write_schemas(directory: Path = SCHEMA_DIR) -> None:
    """Write the posture schema to ``directory`` (regenerate after changing the model)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, model in SCHEMAS.items():
        (directory / name).write_text(schema_document(model), encoding="utf-8")
