"""Contract tests of the ARM sandbox's Policy Insights routes and their control API.

Each answer is checked against the schema the Policy Insights swagger in ``contracts/``
declares for its operation and status (``PolicyStatesQueryResults`` or ``QueryFailure``).
The service writes ``null`` into string-typed fields, which the swagger does not allow
(``contracts/README.md``: a strict validator reports 13 errors per official example), so
nulls are dropped before validation, as they are for the examples themselves.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator, FormatChecker

from sandbox.arm import ArmSandbox, Fault, run_arm_sandbox

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
SWAGGER = json.loads(
    (CONTRACTS / "azure-policyinsights-policystates-2024-10-01.swagger.json").read_text()
)
EXAMPLES = CONTRACTS / "examples" / "azure-policyinsights-2024-10-01"
SUB = "0b5d1c4e-7f3a-4f4e-9a51-2f7c5e1d9a10"
EXAMPLE_SUB = "fffedd8f-ffff-fffd-fffd-fffed2f84852"
QUERY = "/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults"
API = {"api-version": "2024-10-01"}


def without_nulls(value: Any) -> Any:
    """``value`` with every null object member dropped (recursively)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def assert_valid(definition: str, body: Any) -> None:
    """Assert ``body`` (nulls dropped) follows ``#/definitions/<definition>``."""
    schema = {"$ref": f"#/definitions/{definition}", "definitions": SWAGGER["definitions"]}
    validator = Draft4Validator(schema, format_checker=FormatChecker())
    errors = [e.message for e in validator.iter_errors(without_nulls(body))]
    assert errors == [], errors


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox over TLS: pages of 4 records, 9 NonCompliant records in ``SUB``."""
    sandbox = ArmSandbox(policy_page_size=4)
    sandbox.seed_policy_states(9, subscription=SUB, random_seed=3)
    async with run_arm_sandbox(sandbox=sandbox) as served:
        yield served


@pytest.fixture
async def client(arm: ArmSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client with an ARM token, trusting only the sandbox CA."""
    headers = {"Authorization": f"Bearer {arm.issue_token()}"}
    async with httpx.AsyncClient(
        base_url=arm.url, verify=arm.ssl_context(), headers=headers
    ) as made:
        yield made


def test_official_examples_validate_once_nulls_are_dropped() -> None:
    """Both official answers follow PolicyStatesQueryResults when nulls are ignored."""
    for path in sorted(EXAMPLES.glob("*.json")):
        assert_valid(
            "PolicyStatesQueryResults", json.loads(path.read_text())["responses"]["200"]["body"]
        )


async def test_query_results_pages_validate_and_walk_every_record_once(
    client: httpx.AsyncClient,
) -> None:
    """Three pages of 4, 4 and 1, each a valid answer; the last nextLink is null."""
    params: dict[str, str] | None = {**API, "$filter": "complianceState eq 'NonCompliant'"}
    url, seen, pages = f"/subscriptions/{SUB}{QUERY}", [], 0
    while url:
        answer = await client.post(url, params=params)
        assert answer.status_code == 200
        body = answer.json()
        assert_valid("PolicyStatesQueryResults", body)
        assert body["@odata.count"] == len(body["value"])
        seen += [record["resourceId"] for record in body["value"]]
        url, params, pages = body["@odata.nextLink"], None, pages + 1
        if url:
            assert set(httpx.URL(url).params) == {"api-version", "$skiptoken"}
    assert pages == 3 and len(seen) == len(set(seen)) == 9


async def test_query_results_example_subscription_keeps_service_nulls(
    client: httpx.AsyncClient,
) -> None:
    """The examples' records come back with their nulls and @odata annotations."""
    answer = await client.post(f"/subscriptions/{EXAMPLE_SUB}{QUERY}", params=API)
    body = answer.json()
    assert len(body["value"]) == 2 and body["@odata.nextLink"] is None
    record = body["value"][0]
    assert record["@odata.id"] is None and record["policyDefinitionReferenceId"] is None
    assert record["@odata.context"].endswith("$metadata#latest/$entity")


async def test_query_results_filters_on_fields_case_insensitively(
    arm: ArmSandbox, client: httpx.AsyncClient
) -> None:
    """``and``-joined eq/ne clauses select records; field names and values ignore case."""
    arm.policy.put(
        {
            "resourceId": f"/subscriptions/{SUB}/resourceGroups/rg-x/providers/A.B/c/d",
            "policyAssignmentId": "/providers/Microsoft.Authorization/policyAssignments/x",
            "policyDefinitionId": "/providers/Microsoft.Authorization/policyDefinitions/y",
            "complianceState": "Compliant",
        }
    )
    text = "ComplianceState eq 'compliant' and resourceGroup eq 'RG-X' and isCompliant ne false"
    answer = await client.post(f"/subscriptions/{SUB}{QUERY}", params={**API, "$filter": text})
    assert [r["resourceGroup"] for r in answer.json()["value"]] == ["rg-x"]


async def test_query_results_resource_scope_returns_that_resource(
    client: httpx.AsyncClient,
) -> None:
    """At resource scope only the resource's records come back."""
    resource = (
        f"/subscriptions/{EXAMPLE_SUB}/resourceGroups/myrg1/providers/"
        "Microsoft.Network/publicIPAddresses/mypubip1"
    )
    answer = await client.post(f"{resource}{QUERY}", params=API)
    assert answer.status_code == 200
    assert {r["resourceId"] for r in answer.json()["value"]} == {resource}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({**API, "$filter": "complianceState gt 'x'"}, "InvalidQueryParameterValue"),
        ({**API, "$filter": "noSuchField eq 'x'"}, "InvalidQueryParameterValue"),
        ({**API, "$top": "-1"}, "InvalidQueryParameterValue"),
        ({**API, "$skiptoken": "forged"}, "InvalidQueryParameterValue"),
        ({"api-version": "2025-12-01"}, "InvalidApiVersionParameter"),
        ({}, "MissingApiVersionParameter"),
    ],
)
async def test_query_results_bad_options_answer_400_query_failure(
    client: httpx.AsyncClient, params: dict[str, str], code: str
) -> None:
    """Bad filters, tops, tokens and api-versions get a 400 in the error envelope."""
    answer = await client.post(f"/subscriptions/{SUB}{QUERY}", params=params)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == code
    assert_valid("QueryFailure", answer.json())


async def test_query_results_get_or_unknown_path_refused(client: httpx.AsyncClient) -> None:
    """GET is 405 (queryResults is a POST); an unserved Policy Insights path is 404."""
    answer = await client.get(f"/subscriptions/{SUB}{QUERY}", params=API)
    assert answer.status_code == 405 and answer.headers["Allow"] == "POST"
    summarize = QUERY.replace("queryResults", "summarize")
    missing = await client.post(f"/subscriptions/{SUB}{summarize}", params=API)
    assert missing.status_code == 404
    assert_valid("QueryFailure", missing.json())


async def test_query_results_without_token_answers_401(arm: ArmSandbox) -> None:
    """No bearer token: ARM's 401, logged as the swagger operation."""
    async with httpx.AsyncClient(base_url=arm.url, verify=arm.ssl_context()) as plain:
        answer = await plain.post(f"/subscriptions/{SUB}{QUERY}", params=API)
    assert answer.status_code == 401
    assert arm.calls(service="arm")[-1].operation == "PolicyStates_ListQueryResultsForSubscription"


async def test_query_results_fault_429_has_retry_after(
    arm: ArmSandbox, client: httpx.AsyncClient
) -> None:
    """An injected 429 carries Retry-After and ARM's remaining-writes header."""
    arm.add_fault(Fault(status=429, retry_after=7, path="policyStates"))
    answer = await client.post(f"/subscriptions/{SUB}{QUERY}", params=API)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"
    assert answer.headers["x-ms-ratelimit-remaining-subscription-writes"] == "0"
    assert_valid("QueryFailure", answer.json())


async def test_control_put_flip_seed_and_reset_change_what_is_served(
    arm: ArmSandbox, client: httpx.AsyncClient
) -> None:
    """The control API adds, flips and seeds records; reset brings back the examples only."""
    record = {
        "resourceId": f"/subscriptions/{SUB}/resourceGroups/rg-c/providers/A.B/c/one",
        "policyAssignmentId": "/providers/Microsoft.Authorization/policyAssignments/a",
        "policyDefinitionId": "/providers/Microsoft.Authorization/policyDefinitions/d",
        "complianceState": "NonCompliant",
    }
    added = await client.post("/_sandbox/policy/states", json=record)
    assert added.status_code == 201 and added.json()["resourceGroup"] == "rg-c"
    again = await client.post("/_sandbox/policy/states", json=record)
    assert again.status_code == 200
    flip = {k: record[k] for k in ("resourceId", "policyAssignmentId")}
    flipped = await client.patch(
        "/_sandbox/policy/states", json={**flip, "complianceState": "Compliant"}
    )
    assert flipped.status_code == 200 and flipped.json()["value"][0]["isCompliant"] is True
    unknown = await client.patch(
        "/_sandbox/policy/states",
        json={**flip, "policyAssignmentId": "nope", "complianceState": "Compliant"},
    )
    assert unknown.status_code == 404
    bad = await client.post("/_sandbox/policy/states", json={"resourceId": "x"})
    assert bad.status_code == 400
    seeded = await client.post("/_sandbox/policy/seed", json={"count": 2, "subscriptionId": SUB})
    assert seeded.status_code == 201 and len(seeded.json()["value"]) == 2
    assert arm.calls(service="arm") == []
    assert (await client.post("/_sandbox/reset")).status_code == 204
    listed = (await client.get("/_sandbox/policy/states")).json()["value"]
    assert {r["subscriptionId"] for r in listed} == {EXAMPLE_SUB} and len(listed) == 2


async def test_attestation_put_get_delete_and_bad_body_refused(
    arm: ArmSandbox, client: httpx.AsyncClient
) -> None:
    """PUT creates (201) then updates (200); GET reads; DELETE 200 then 204; bad body 400."""
    url = f"/subscriptions/{SUB}/providers/Microsoft.PolicyInsights/attestations/a1"
    body = {
        "properties": {
            "policyAssignmentId": "/providers/Microsoft.Authorization/policyAssignments/x",
            "complianceState": "Compliant",
            "evidence": [{"description": "report", "sourceUri": "https://x.test/r"}],
            "assessmentDate": "2026-01-01T00:00:00Z",
        }
    }
    assert (await client.put(url, params=API, json=body)).status_code == 201
    updated = await client.put(url, params=API, json=body)
    assert updated.status_code == 200
    assert updated.json()["properties"]["provisioningState"] == "Succeeded"
    read = await client.get(url, params=API)
    assert read.json()["type"] == "Microsoft.PolicyInsights/attestations"
    assert (await client.delete(url, params=API)).status_code == 200
    assert (await client.delete(url, params=API)).status_code == 204
    assert (await client.get(url, params=API)).status_code == 404
    for bad in (
        {},
        {"properties": {"complianceState": "Compliant"}},
        {"properties": {**body["properties"], "complianceState": "Exempt"}},
        {"properties": {**body["properties"], "evidence": "nope"}},
    ):
        refused = await client.put(url, params=API, json=bad)
        assert refused.status_code == 400 and refused.json()["error"]["code"]
    operations = {c.operation for c in arm.calls(service="arm")}
    assert operations == {
        "Attestations_CreateOrUpdateAtSubscription",
        "Attestations_GetAtSubscription",
        "Attestations_DeleteAtSubscription",
    }
