"""Warden's PolicyPosture contract: its published schema and how requests map onto it."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import jsonschema
import pydantic
import pytest

from core.evidence import RequestStatus
from core.itsm import SCHEMA_DIR, schema_document
from core.posture import (
    SCHEMAS,
    PolicyPosture,
    PostureStatus,
    attestation_expiry,
    posture_status,
)

POSTURE = {
    "policyId": "/subscriptions/0b5d1c4e-7f3a-4f4e-9a51-2f7c5e1d9a10/providers/"
    "Microsoft.Authorization/policyAssignments/key-rotation-review",
    "requirementId": "CIS-8.5",
    "resourceId": "/subscriptions/0b5d1c4e-7f3a-4f4e-9a51-2f7c5e1d9a10/resourceGroups/rg/"
    "providers/Microsoft.KeyVault/vaults/kv",
    "status": "attested-compliant",
    "evidenceRef": "https://contoso.sharepoint.com/sites/grc/Evidence/report.pdf",
    "evaluatedAtUtc": "2026-11-26T02:48:16Z",
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_posture_schema_file_current(name: str) -> None:
    """docs/schemas/<name> is what its model generates."""
    current = (SCHEMA_DIR / name).read_text(encoding="utf-8")
    assert current == schema_document(SCHEMAS[name]), (
        'regenerate: .venv/bin/python -c "from core.posture import write_schemas; write_schemas()"'
    )


def test_posture_json_valid_against_schema() -> None:
    """A record serialises with camelCase names and validates against its published schema."""
    record = PolicyPosture.model_validate(POSTURE)
    dumped = record.model_dump(mode="json", by_alias=True)
    assert dumped == POSTURE
    schema = json.loads((SCHEMA_DIR / "policy-posture.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(dumped, schema)


def test_posture_unknown_status_refused() -> None:
    """A status outside the four documented values is refused by the model and the schema."""
    with pytest.raises(pydantic.ValidationError):
        PolicyPosture.model_validate({**POSTURE, "status": "compliant"})
    schema = json.loads((SCHEMA_DIR / "policy-posture.schema.json").read_text(encoding="utf-8"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**POSTURE, "status": "compliant"}, schema)


@pytest.mark.parametrize(
    ("status", "posture"),
    [
        (RequestStatus.OPEN, PostureStatus.PENDING_EVIDENCE),
        (RequestStatus.SUBMITTED, PostureStatus.PENDING_EVIDENCE),
        (RequestStatus.CHANGES_REQUESTED, PostureStatus.PENDING_EVIDENCE),
        (RequestStatus.APPROVED, PostureStatus.ATTESTED_COMPLIANT),
        (RequestStatus.REJECTED, PostureStatus.NON_COMPLIANT),
        (RequestStatus.RESOLVED_BY_POLICY, PostureStatus.RESOLVED_BY_POLICY),
        (RequestStatus.CANCELLED, None),
    ],
)
def test_posture_status_of_request_status(
    status: RequestStatus, posture: PostureStatus | None
) -> None:
    """Every request status states a posture, but a cancelled request states none."""
    assert posture_status(status) is posture


def test_posture_attestation_expires_90_days_after_due() -> None:
    """An attestation for a request due on 2026-12-31 expires on 2027-03-31, midnight UTC."""
    assert attestation_expiry(date(2026, 12, 31)) == datetime(2027, 3, 31, tzinfo=UTC)
