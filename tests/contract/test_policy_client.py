"""Contract tests: ``PolicyInsightsClient`` against the ARM sandbox, over TLS, with real SDKs.

The real ``azure.identity.aio.ClientSecretCredential`` gets tokens from the sandbox's
Entra ID; the resilient httpx layer carries every call. After each test, every ARM request
the client sent is checked against the Policy Insights swagger in ``contracts/``
(operation, method, declared query parameters, no body).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.identity.aio import ClientSecretCredential

from connectors.http import RetryPolicy, resilient_client
from connectors.policy.client import PolicyInsightsClient
from connectors.policy.errors import (
    PolicyRefused,
    PolicyThrottled,
    PolicyUnavailable,
)
from core.breaker import Breakers
from core.errors import Outcome
from core.policy_states import (
    AttestationRequest,
    AttestationState,
    ComplianceState,
    Evidence,
    PolicyState,
)
from sandbox.arm import ArmSandbox, Fault, RequestRecord, run_arm_sandbox

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
SWAGGER = json.loads(
    (CONTRACTS / "azure-policyinsights-policystates-2024-10-01.swagger.json").read_text()
)
FAST = RetryPolicy(attempts=3, timeout=5.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)
SUB = "0b5d1c4e-7f3a-4f4e-9a51-2f7c5e1d9a10"
EXAMPLE_SUB = "fffedd8f-ffff-fffd-fffd-fffed2f84852"
EXAMPLE_RESOURCE = (
    f"/subscriptions/{EXAMPLE_SUB}/resourceGroups/myrg1/providers/"
    "Microsoft.Network/publicIPAddresses/mypubip1"
)
EXAMPLE_ASSIGNMENT = (
    f"/subscriptions/{EXAMPLE_SUB}/providers/Microsoft.Authorization/policyAssignments/"
    "Enable Monitoring in Azure Security Center"
)
DEFINITION = "/providers/Microsoft.Authorization/policyDefinitions/0a914e76-4921-4c19-b460"


def declared_query(operation_id: str) -> set[str]:
    """The query parameter names the swagger declares for an operation (x-ms-paths too)."""
    for paths in (SWAGGER["paths"], SWAGGER["x-ms-paths"]):
        for item in paths.values():
            op = item.get("post", {})
            if op.get("operationId") == operation_id:
                names = set()
                for parameter in op["parameters"]:
                    ref = parameter.get("$ref", "")
                    spec = SWAGGER["parameters"][ref.rsplit("/", 1)[1]] if ref else parameter
                    if spec["in"] == "query":
                        names.add(spec["name"])
                return names
    raise AssertionError(f"the client called an operation the swagger lacks: {operation_id}")


def assert_attestation_put(entry: RequestRecord) -> None:
    """Assert that an attestation request is the PUT attestations.json declares.

    That swagger is not in ``contracts/`` (see ``sandbox.arm_policy_attest``): the body is
    checked by hand (``properties`` with ``policyAssignmentId``, no readOnly property).
    """
    assert entry.method == "PUT" and entry.query == {"api-version": "2024-10-01"}
    properties = entry.body["properties"]
    assert properties["policyAssignmentId"] and None not in properties.values()
    assert not {"provisioningState", "lastComplianceStateChangeAt"} & set(properties)


def assert_follows_swagger(entry: RequestRecord) -> None:
    """Assert that one logged request is a POST the swagger declares, with its parameters."""
    if entry.operation.startswith("Attestations_"):
        assert_attestation_put(entry)
        return
    assert entry.method == "POST", entry.summary()
    assert entry.body is None, f"{entry.summary()}: a body the swagger does not declare"
    assert entry.query.get("api-version"), f"{entry.summary()}: no api-version"
    assert set(entry.query) <= declared_query(entry.operation), entry.summary()


def state(resource: str, assignment: str, compliance: str, **extra: Any) -> dict[str, Any]:
    """The minimal fields the sandbox control needs for a record."""
    return {
        "resourceId": f"/subscriptions/{SUB}/resourceGroups/{resource}",
        "policyAssignmentId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/"
        f"policyAssignments/{assignment}",
        "policyDefinitionId": DEFINITION,
        "complianceState": compliance,
        **extra,
    }


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox over TLS: pages of 3 records, 10 NonCompliant records in ``SUB``."""
    sandbox = ArmSandbox(policy_page_size=3)
    sandbox.seed_policy_states(10, subscription=SUB, random_seed=7)
    async with run_arm_sandbox(sandbox=sandbox) as served:
        yield served
        for entry in served.calls(service="arm"):
            assert_follows_swagger(entry)


@pytest.fixture
async def credential(arm: ArmSandbox) -> AsyncIterator[ClientSecretCredential]:
    """The real async ClientSecretCredential, trusting only the sandbox CA."""
    async with ClientSecretCredential(
        arm.tenant_id,
        arm.client_id,
        arm.client_secret,
        authority=arm.authority,
        connection_verify=str(arm.ca_path),
    ) as made:
        yield made


@pytest.fixture
async def http(arm: ArmSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """The resilient httpx layer with fast retries, trusting only the sandbox CA."""
    async with resilient_client(breakers=Breakers(), verify=arm.ssl_context(), policy=FAST) as made:
        yield made


@pytest.fixture
def policy(
    arm: ArmSandbox, http: httpx.AsyncClient, credential: ClientSecretCredential
) -> PolicyInsightsClient:
    """The client under test, pointed at the sandbox."""
    return PolicyInsightsClient(http, credential, base_url=arm.url)


async def collect(states: AsyncIterator[PolicyState]) -> list[PolicyState]:
    """Every state an iterator yields."""
    return [item async for item in states]


# Listing non-compliance.


async def test_non_compliant_subscription_several_pages_returns_every_record_once(
    arm: ArmSandbox, policy: PolicyInsightsClient
) -> None:
    """10 records in pages of 3: four POSTs along @odata.nextLink, each record once."""
    found = await collect(policy.non_compliant(f"/subscriptions/{SUB}"))
    assert len(found) == 10 == len({s.key for s in found})
    assert all(s.compliance_state == ComplianceState.NON_COMPLIANT for s in found)
    operations = [c.operation for c in arm.calls(service="arm")]
    assert operations == ["PolicyStates_ListQueryResultsForSubscription"] + 3 * [
        "PolicyStates_NextLink"
    ]
    first = arm.calls(service="arm")[0]
    assert first.query["$filter"] == "complianceState eq 'NonCompliant'"


async def test_non_compliant_assignment_and_definition_filters_keep_only_matches(
    arm: ArmSandbox, policy: PolicyInsightsClient
) -> None:
    """Only NonCompliant records of the named assignment and definition come back."""
    arm.policy.put(state("rg-a/providers/Microsoft.Web/sites/one", "tls-only", "NonCompliant"))
    arm.policy.put(state("rg-a/providers/Microsoft.Web/sites/two", "tls-only", "Compliant"))
    other = state("rg-a/providers/Microsoft.Web/sites/three", "tls-only", "NonCompliant")
    arm.policy.put({**other, "policyDefinitionId": DEFINITION + "-other"})
    assignment = (
        f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/tls-only"
    )
    found = await collect(
        policy.non_compliant(
            f"/subscriptions/{SUB}",
            policy_assignment_id=assignment,
            policy_definition_id=DEFINITION,
        )
    )
    assert [s.resource_id.rsplit("/", 1)[1] for s in found] == ["one"]
    assert found[0].resource_group == "rg-a" and found[0].resource_type == "/Microsoft.Web/sites"


async def test_non_compliant_resource_group_scope_returns_only_that_group(
    arm: ArmSandbox, policy: PolicyInsightsClient
) -> None:
    """A resource-group scope keeps the group's records (names compare case-insensitively)."""
    groups = {s["resourceGroup"] for s in arm.policy.records.values() if s["subscriptionId"] == SUB}
    group = sorted(groups)[0]
    found = await collect(policy.non_compliant(f"/subscriptions/{SUB}/resourceGroups/{group}"))
    expected = [
        s
        for s in arm.policy.records.values()
        if s["subscriptionId"] == SUB and s["resourceGroup"] == group
    ]
    assert found and len(found) == len(expected)
    assert {s.resource_group for s in found} == {group}
    assert arm.calls(service="arm")[0].operation == "PolicyStates_ListQueryResultsForResourceGroup"


async def test_non_compliant_official_example_nulls_become_none(
    policy: PolicyInsightsClient,
) -> None:
    """The examples' records come back with their nulls as None and their set id kept."""
    found = await collect(policy.non_compliant(f"/subscriptions/{EXAMPLE_SUB}"))
    assert len(found) == 2
    for item in found:
        assert item.definition_reference_id is None
        assert item.policy_set_definition_id is not None
        assert item.location == "eastus" and item.effect == "AuditIfNotExists"
        assert item.timestamp.isoformat() == "2019-10-09T17:48:05+00:00"


async def test_non_compliant_top_caps_the_records_returned(
    arm: ArmSandbox, policy: PolicyInsightsClient
) -> None:
    """``top=4`` returns at most 4 records in all, over two pages of 3."""
    found = await collect(policy.non_compliant(f"/subscriptions/{SUB}", top=4))
    assert len(found) == 4
    assert len(arm.calls(service="arm")) == 2


def test_non_compliant_bad_scope_or_top_refused_before_any_request(
    policy: PolicyInsightsClient,
) -> None:
    """A scope that is no subscription or group, or a top below 1, is a ValueError."""
    with pytest.raises(ValueError, match="scope"):
        policy.non_compliant("/subscriptions/not-a-guid")
    with pytest.raises(ValueError, match="top"):
        policy.non_compliant(f"/subscriptions/{SUB}", top=0)


# "Resolved by policy".


async def test_compliance_of_after_flip_through_control_api_returns_compliant(
    arm: ArmSandbox, http: httpx.AsyncClient, policy: PolicyInsightsClient
) -> None:
    """A re-evaluation set through the control API shows in the next compliance_of."""
    before = await policy.compliance_of(EXAMPLE_RESOURCE, EXAMPLE_ASSIGNMENT)
    assert before is not None and not before.is_compliant
    answer = await http.patch(
        f"{arm.url}/_sandbox/policy/states",
        json={
            "resourceId": EXAMPLE_RESOURCE,
            "policyAssignmentId": EXAMPLE_ASSIGNMENT,
            "complianceState": "Compliant",
        },
    )
    assert answer.status_code == 200
    after = await policy.compliance_of(
        EXAMPLE_RESOURCE.replace("mypubip1", "MyPubIp1"), EXAMPLE_ASSIGNMENT
    )
    assert after is not None and after.is_compliant
    assert after.compliance_state == ComplianceState.COMPLIANT
    assert arm.calls(service="arm")[-1].operation == "PolicyStates_ListQueryResultsForResource"


async def test_compliance_of_unknown_pair_returns_none(policy: PolicyInsightsClient) -> None:
    """No record for the resource under the assignment: None (nothing evaluates it)."""
    assignment = EXAMPLE_ASSIGNMENT.replace("Enable Monitoring", "Gone")
    assert await policy.compliance_of(EXAMPLE_RESOURCE, assignment) is None


async def test_compliance_of_initiative_reference_id_picks_that_policy(
    arm: ArmSandbox, policy: PolicyInsightsClient
) -> None:
    """With two policies of one initiative, the reference id chooses the record."""
    resource = "rg-i/providers/Microsoft.Sql/servers/db"
    for reference, compliance in (("audit-tls", "Compliant"), ("deny-public", "NonCompliant")):
        arm.policy.put(
            state(resource, "baseline", compliance, policyDefinitionReferenceId=reference)
        )
    resource_id = f"/subscriptions/{SUB}/resourceGroups/{resource}"
    assignment = (
        f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/baseline"
    )
    either = await policy.compliance_of(resource_id, assignment)
    chosen = await policy.compliance_of(
        resource_id, assignment, definition_reference_id="audit-tls"
    )
    assert either is not None and either.definition_reference_id == "deny-public"
    assert chosen is not None and chosen.is_compliant


# Assignments of a definition (attesting a requirement that names only the definition).


async def test_assignments_of_returns_each_assignment_once_in_any_state(
    arm: ArmSandbox, policy: PolicyInsightsClient
) -> None:
    """Three assignments evaluate the vault under the definition (one an initiative, one
    Compliant): each comes back once with its reference id; other definitions and other
    resources are left out; the read is the resource-scope queryResults with the filter."""
    vault = "rg-v/providers/Microsoft.KeyVault/vaults/kv"
    arm.policy.put(state(vault, "review-sub", "Unknown", policyDefinitionAction="manual"))
    arm.policy.put(state(vault, "review-rg", "Compliant"))
    arm.policy.put(state(vault, "baseline", "NonCompliant", policyDefinitionReferenceId="review"))
    other = state(vault, "baseline", "NonCompliant", policyDefinitionReferenceId="rotation")
    arm.policy.put({**other, "policyDefinitionId": DEFINITION + "-other"})
    arm.policy.put(state(vault + "-two", "review-sub", "Unknown"))
    resource_id = f"/subscriptions/{SUB}/resourceGroups/{vault}"
    found = await policy.assignments_of(resource_id.replace("/kv", "/KV"), DEFINITION)
    pairs = {(s.policy_assignment_id.rsplit("/", 1)[1], s.definition_reference_id) for s in found}
    assert pairs == {("review-sub", None), ("review-rg", None), ("baseline", "review")}
    assert len(found) == 3 and {s.resource_id for s in found} == {resource_id}
    [call] = arm.calls(service="arm")
    assert call.operation == "PolicyStates_ListQueryResultsForResource"
    assert call.query["$filter"] == f"policyDefinitionId eq '{DEFINITION}'"


async def test_assignments_of_unevaluated_resource_returns_empty(
    policy: PolicyInsightsClient,
) -> None:
    """No record of the resource under the definition: no assignment to attest under."""
    resource_id = f"/subscriptions/{SUB}/resourceGroups/rg-v/providers/Microsoft.Web/sites/none"
    assert await policy.assignments_of(resource_id, DEFINITION) == []


async def test_assignments_of_refused_raises_policy_refused(
    arm: ArmSandbox, policy: PolicyInsightsClient
) -> None:
    """A 400 on the read surfaces as PolicyRefused, not retried (the job quarantines)."""
    arm.add_fault(Fault(status=400, code="InvalidQueryParameterValue", message="no", method="POST"))
    resource_id = f"/subscriptions/{SUB}/resourceGroups/rg-v/providers/Microsoft.Web/sites/x"
    with pytest.raises(PolicyRefused) as caught:
        await policy.assignments_of(resource_id, DEFINITION)
    assert caught.value.code == "InvalidQueryParameterValue"
    assert caught.value.outcome is Outcome.FAIL


async def test_assignments_of_bad_resource_id_refused_before_any_request(
    arm: ArmSandbox, policy: PolicyInsightsClient
) -> None:
    """A resource id that is not an ARM id is a ValueError, not a call."""
    with pytest.raises(ValueError, match="ARM resource id"):
        await policy.assignments_of("/tenants/x/../y", DEFINITION)
    assert arm.calls(service="arm") == []


# Throttling, refusals, outages.


async def test_non_compliant_throttled_once_retried_by_layer_then_succeeds(
    arm: ArmSandbox, policy: PolicyInsightsClient
) -> None:
    """A 429 with Retry-After: 0 on a page is waited out; the POST (a read) is replayed."""
    arm.add_fault(Fault(status=429, retry_after=0, method="POST", path="queryResults"))
    found = await collect(policy.non_compliant(f"/subscriptions/{EXAMPLE_SUB}"))
    assert len(found) == 2
    assert [c.status for c in arm.calls(service="arm")] == [429, 200]


async def test_non_compliant_throttled_beyond_deadline_raises_policy_throttled(
    arm: ArmSandbox, policy: PolicyInsightsClient
) -> None:
    """A Retry-After longer than the deadline is not waited: PolicyThrottled carries it."""
    arm.add_fault(Fault(status=429, retry_after=120, times=None))
    with pytest.raises(PolicyThrottled) as caught:
        await collect(policy.non_compliant(f"/subscriptions/{SUB}"))
    assert caught.value.retry_after == 120 and caught.value.outcome is Outcome.RATE_LIMITED
    assert len(arm.calls(service="arm")) == 1


async def test_client_unknown_api_version_raises_policy_refused_400(
    arm: ArmSandbox, http: httpx.AsyncClient, credential: ClientSecretCredential
) -> None:
    """ARM's 400 for an api-version Policy Insights does not serve keeps its message."""
    old = PolicyInsightsClient(http, credential, base_url=arm.url, api_version="2019-10-01")
    with pytest.raises(PolicyRefused) as caught:
        await collect(old.non_compliant(f"/subscriptions/{SUB}"))
    assert caught.value.status == 400 and caught.value.code == "InvalidApiVersionParameter"
    assert "2024-10-01" in caught.value.message and caught.value.outcome is Outcome.FAIL


async def test_non_compliant_server_error_every_attempt_raises_policy_unavailable(
    arm: ArmSandbox, policy: PolicyInsightsClient
) -> None:
    """5xx on every attempt: the layer gives up and PolicyUnavailable says retry."""
    arm.add_fault(Fault(status=500, times=None))
    with pytest.raises(PolicyUnavailable) as caught:
        await collect(policy.non_compliant(f"/subscriptions/{SUB}"))
    assert caught.value.status == 500 and caught.value.outcome is Outcome.RETRY
    assert len(arm.calls(service="arm")) == FAST.attempts


async def test_client_many_pages_fetch_one_token(
    arm: ArmSandbox, policy: PolicyInsightsClient
) -> None:
    """Four pages and a compliance check use one token from the Entra ID endpoint."""
    await collect(policy.non_compliant(f"/subscriptions/{SUB}"))
    await policy.compliance_of(EXAMPLE_RESOURCE, EXAMPLE_ASSIGNMENT)
    assert len(arm.calls(service="login", successful=True)) >= 1
    tokens = [c for c in arm.calls(service="login") if c.path.endswith("/token")]
    assert len(tokens) == 1


# Attestations.


async def test_attest_manual_policy_sets_compliance_and_same_name_keeps_one(
    arm: ArmSandbox, policy: PolicyInsightsClient
) -> None:
    """An attestation with evidence makes a manual policy compliant; a replay changes nothing."""
    record = state("rg-m/providers/Microsoft.KeyVault/vaults/kv", "manual-review", "NonCompliant")
    arm.policy.put({**record, "policyDefinitionAction": "manual"})
    request = AttestationRequest(
        policy_assignment_id=record["policyAssignmentId"],
        compliance_state=AttestationState.COMPLIANT,
        evidence=(Evidence(description="Key rotation report", source_uri="https://x.test/r"),),
        comments="Approved in Teams by Ada Lovelace",
        owner="55a32e28-3aa5-4eea-9b5a-4cd85153b966",
    )
    first = await policy.attest(record["resourceId"], request, name="evidence-42")
    again = await policy.attest(record["resourceId"], request, name="evidence-42")
    assert first.provisioning_state == "Succeeded" and first.compliance_state == "Compliant"
    assert again.last_state_change == first.last_state_change
    assert first.evidence[0].source_uri == "https://x.test/r"
    assert len(arm.policy.attestations.items) == 1
    resolved = await policy.compliance_of(record["resourceId"], record["policyAssignmentId"])
    assert resolved is not None and resolved.is_compliant
    operations = [c.operation for c in arm.calls(service="arm")][:2]
    assert operations == 2 * ["Attestations_CreateOrUpdateAtResource"]
    assert [c.status for c in arm.calls(service="arm")][:2] == [201, 200]


async def test_attest_sandbox_refusal_raises_policy_refused(
    arm: ArmSandbox, policy: PolicyInsightsClient
) -> None:
    """A 400 from the service surfaces as PolicyRefused with its message."""
    arm.add_fault(Fault(status=400, code="InvalidRequestContent", message="bad", method="PUT"))
    request = AttestationRequest(
        policy_assignment_id="/providers/Microsoft.Authorization/policyAssignments/a",
        compliance_state=AttestationState.NON_COMPLIANT,
    )
    with pytest.raises(PolicyRefused) as caught:
        await policy.attest(f"/subscriptions/{SUB}", request)
    assert caught.value.code == "InvalidRequestContent" and "bad" in caught.value.user_message
