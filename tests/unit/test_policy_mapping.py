"""Unit tests of the Policy Insights mapping, query options and scope parsing."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken

from connectors.policy.client import PolicyInsightsClient, resource_path, scope_path
from connectors.policy.errors import PolicyInsightsError
from connectors.policy.mapping import (
    attestation_body,
    attestation_from_resource,
    policy_state_from_record,
)
from connectors.policy.query import states_query
from core.errors import InvalidPayload
from core.policy_states import AttestationRequest, AttestationState, ComplianceState, Evidence

EXAMPLES = Path(__file__).resolve().parents[2] / "contracts" / "examples"
POLICY_EXAMPLES = sorted((EXAMPLES / "azure-policyinsights-2024-10-01").glob("*.json"))
SUB = "fffedd8f-ffff-fffd-fffd-fffed2f84852"


def example_records() -> list[dict[str, Any]]:
    """Every record of the official Policy Insights examples."""
    records = []
    for path in POLICY_EXAMPLES:
        records += json.loads(path.read_text())["responses"]["200"]["body"]["value"]
    return records


def test_policy_state_from_record_official_examples_parse_with_nulls_as_none() -> None:
    """All four example records map; their null strings become None, ids stay as sent."""
    records = example_records()
    assert len(records) == 4
    for record in records:
        mapped = policy_state_from_record(record)
        assert mapped.resource_id == record["resourceId"]
        assert mapped.policy_assignment_id == record["policyAssignmentId"]
        assert mapped.policy_definition_id == record["policyDefinitionId"]
        assert mapped.definition_reference_id is None
        assert mapped.compliance_state == ComplianceState.NON_COMPLIANT
        assert not mapped.is_compliant
        assert (mapped.subscription_id, mapped.resource_group) == (SUB, "myrg1")
        assert mapped.resource_type == "/Microsoft.Network/publicIPAddresses"
        assert mapped.location == "eastus"
        assert mapped.timestamp.utcoffset() is not None


def test_policy_state_from_record_missing_resource_id_raises_invalid_payload() -> None:
    """A record without resourceId names that field."""
    record = {k: v for k, v in example_records()[0].items() if k != "resourceId"}
    with pytest.raises(InvalidPayload) as caught:
        policy_state_from_record(record)
    assert caught.value.field == "resourceId"


def test_policy_state_from_record_not_an_object_raises_invalid_payload() -> None:
    """A record that is not a JSON object is refused."""
    with pytest.raises(InvalidPayload):
        policy_state_from_record(["not", "a", "record"])


def test_policy_state_from_record_unknown_state_and_naive_time_kept_as_utc() -> None:
    """A state Warden does not know is kept as text; a naive timestamp is read as UTC."""
    record = {
        **example_records()[0],
        "complianceState": "Pending",
        "timestamp": "2026-01-02T03:04:05",
    }
    record["resourceLocation"] = ""
    mapped = policy_state_from_record(record)
    assert mapped.compliance_state == "Pending" and mapped.location is None
    assert mapped.timestamp.isoformat() == "2026-01-02T03:04:05+00:00"


def test_states_query_quotes_values_and_joins_with_and() -> None:
    """Each given field becomes an eq clause; single quotes are doubled."""
    query = states_query(compliance_state="NonCompliant", policy_assignment_id="/a/it's", top=5)
    assert query == {
        "$filter": "complianceState eq 'NonCompliant' and policyAssignmentId eq '/a/it''s'",
        "$top": "5",
    }
    assert states_query() == {}


@pytest.mark.parametrize("kwargs", [{"top": 0}, {"top": 1001}, {"resource_id": " "}])
def test_states_query_bad_values_raise_value_error(kwargs: dict[str, Any]) -> None:
    """A top outside 1..1000 or an empty id is refused."""
    with pytest.raises(ValueError):
        states_query(**kwargs)


def test_scope_path_subscription_or_group_returns_path() -> None:
    """Subscription and resource-group scopes are accepted; anything else is not."""
    assert scope_path(f"/subscriptions/{SUB}") == f"/subscriptions/{SUB}"
    assert scope_path(f"/subscriptions/{SUB}/resourceGroups/my.rg(1)/") == (
        f"/subscriptions/{SUB}/resourceGroups/my.rg%281%29"
    )
    for bad in ("/subscriptions/abc", f"/subscriptions/{SUB}/resourceGroups/a/b", "rg"):
        with pytest.raises(ValueError):
            scope_path(bad)


def test_resource_path_encodes_segments_and_refuses_dot_segments() -> None:
    """Spaces are percent-encoded; ``..`` or a non-subscription id is refused."""
    assert resource_path("/subscriptions/s/resourceGroups/r/x y") == (
        "/subscriptions/s/resourceGroups/r/x%20y"
    )
    for bad in ("/subscriptions/s/../x", "/tenants/t", "/subscriptions"):
        with pytest.raises(ValueError):
            resource_path(bad)


class _Credential:
    """A credential that hands out one fixed token."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Return the token."""
        return AccessToken("t", int(time.time()) + 3600)

    async def close(self) -> None:
        """Nothing to close."""

    async def __aenter__(self) -> _Credential:
        """Enter."""
        return self

    async def __aexit__(self, *args: object) -> None:
        """Exit."""


async def test_non_compliant_next_link_to_another_host_refused() -> None:
    """A nextLink off the ARM host is refused before the token goes there."""
    posted: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        posted.append(str(request.url))
        body = {"value": [], "@odata.nextLink": "https://evil.example/next?$skiptoken=x"}
        return httpx.Response(200, json=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = PolicyInsightsClient(http, _Credential(), base_url="https://arm.test")
        with pytest.raises(PolicyInsightsError) as caught:
            [s async for s in client.non_compliant(f"/subscriptions/{SUB}")]
    assert caught.value.code == "InvalidNextLink" and len(posted) == 1


def test_attestation_body_drops_unset_fields_and_writes_utc_times() -> None:
    """Only given fields go out; times are UTC with Z; evidence uses the wire names."""
    request = AttestationRequest(
        policy_assignment_id="/a",
        compliance_state=AttestationState.NON_COMPLIANT,
        evidence=(Evidence(source_uri="https://x.test/e"),),
        assessment_date=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
    )
    assert attestation_body(request) == {
        "properties": {
            "policyAssignmentId": "/a",
            "complianceState": "NonCompliant",
            "assessmentDate": "2026-01-02T01:04:05Z",
            "evidence": [{"sourceUri": "https://x.test/e"}],
        }
    }


def test_attestation_from_resource_reads_properties_and_refuses_missing_assignment() -> None:
    """A resource maps to Attestation; without policyAssignmentId it is InvalidPayload."""
    resource: dict[str, Any] = {
        "id": "/subscriptions/s/providers/Microsoft.PolicyInsights/attestations/a",
        "name": "a",
        "properties": {
            "policyAssignmentId": "/a",
            "complianceState": "Compliant",
            "provisioningState": "Succeeded",
            "lastComplianceStateChangeAt": "2021-06-10T00:00:00Z",
            "evidence": [{"description": "d", "sourceUri": None}],
        },
    }
    mapped = attestation_from_resource(resource)
    assert mapped.compliance_state == "Compliant" and mapped.evidence[0].description == "d"
    resource["properties"].pop("policyAssignmentId")
    with pytest.raises(InvalidPayload):
        attestation_from_resource(resource)
