"""Attestations for a requirement that names only a policy definition.

Warden with a catalog whose requirement names a built-in policy definition and no
assignment, connected to the ARM sandbox (its Policy Insights, Entra ID and Graph), on
SQLite and PostgreSQL. The sandbox holds the definition assigned at a management group and
at the subscription, and inside an initiative assigned to a resource group; the
``policy.attest`` job finds which of them evaluate each resource (Policy Insights' latest
states of the resource) and attests under each, through the real client over TLS.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app import WORKER
from core.store import outbox
from core.store.posture import POLICY_ATTEST_JOB
from core.store.schema import outbox as outbox_table
from sandbox.arm import ArmSandbox, Fault, run_arm_sandbox
from tests.integration.conftest import WardenFactory
from tests.integration.policy_support import (
    FiledLink,
    approve_filed,
    attest_jobs,
    attested,
    open_policy_request,
    policy_room,
    store_of,
)
from tests.integration.test_evidence_chat import RITA, Room

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)

SUB = "3c1e9a7d-5b2f-4e8a-9d61-7a0f2b4c6e18"
SCOPE = f"/subscriptions/{SUB}"
ASSIGNMENTS = "providers/Microsoft.Authorization/policyAssignments"
DEFINITION = (
    "/providers/Microsoft.Authorization/policyDefinitions/b2d4e6f8-1a3c-4e5a-9c7e-0f1a2b3c4d5e"
)
OTHER_DEFINITION = "/providers/Microsoft.Authorization/policyDefinitions/c9e8d7f6-0a1b-4c2d-8e3f"
AT_GROUP = f"/providers/Microsoft.Management/managementGroups/contoso/{ASSIGNMENTS}/kv-review-mg"
AT_SUB = f"{SCOPE}/{ASSIGNMENTS}/kv-review"
INITIATIVE = f"{SCOPE}/resourceGroups/rg-keys/{ASSIGNMENTS}/keys-baseline"
INITIATIVE_SET = "/providers/Microsoft.Authorization/policySetDefinitions/keys-baseline"
REFERENCE = "vaultReview"
REVIEWERS = "6f4c1b3e-2a8d-4b9e-9c1a-0d2e3f4a5b6c"
REQUIREMENT = "CIS-8.7"
CATALOG = f"""\
requirements:
  - id: {REQUIREMENT}
    title: Key Vault access is reviewed
    guidance: The access review of each vault.
    policy_definitions: ["{DEFINITION}"]
    evidence: [link, attestation]
    owner: owner@contoso.com
    reviewers: ["{REVIEWERS}"]
    due_days: 30
"""
LINK = "https://contoso.example/reports/vault-access-q4.pdf"
WEB_URL = "https://contoso.sharepoint.com/sites/grc/Evidence/CIS-8.7/vault-access-q4.pdf"
DIGEST = hashlib.sha256(b"vault access review").hexdigest()


def vault(name: str) -> str:
    """The resource id of a key vault (outside the polled resource group)."""
    return f"{SCOPE}/resourceGroups/rg-keys/providers/Microsoft.KeyVault/vaults/{name}"


def manual_state(resource: str, assignment: str, **extra: Any) -> dict[str, Any]:
    """A manual policy's state of ``resource`` under ``assignment``: Unknown until attested."""
    return {
        "resourceId": resource,
        "policyAssignmentId": assignment,
        "policyDefinitionId": DEFINITION,
        "policyDefinitionAction": "manual",
        "complianceState": "Unknown",
        **extra,
    }


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox over TLS: kv-one is evaluated under the definition by three
    assignments (one an initiative), kv-two by the subscription's only, kv-gone by none."""
    sandbox = ArmSandbox(seed_examples=False)
    sandbox.add_user(
        "Rita Reviewer", "rita@contoso.com", object_id=RITA["aadObjectId"], groups=[REVIEWERS]
    )
    in_set = {"policySetDefinitionId": INITIATIVE_SET}
    for state in (
        manual_state(vault("kv-one"), AT_GROUP),
        manual_state(vault("kv-one"), AT_SUB, complianceState="NonCompliant"),
        manual_state(vault("kv-one"), INITIATIVE, policyDefinitionReferenceId=REFERENCE, **in_set),
        manual_state(
            vault("kv-one"),
            INITIATIVE,
            policyDefinitionId=OTHER_DEFINITION,
            policyDefinitionReferenceId="vaultRotation",
            **in_set,
        ),
        manual_state(vault("kv-two"), AT_SUB),
        manual_state(vault("kv-gone"), AT_SUB, policyDefinitionId=OTHER_DEFINITION),
    ):
        sandbox.policy.put(state)
    async with run_arm_sandbox(sandbox=sandbox) as served:
        yield served


@pytest.fixture
async def room(tmp_path: Path, start_warden: WardenFactory, arm: ArmSandbox) -> Room:
    """Warden attesting to the ARM sandbox, installed in the compliance channel."""
    return await policy_room(tmp_path, start_warden, arm, CATALOG, SCOPE)


FILED = FiledLink(LINK, WEB_URL, "01FEDCBA", DIGEST, "vault-access-q4.pdf")
_store, _attest_jobs, _attested = store_of, attest_jobs, attested


async def _open(room: Room, *resources: str) -> str:
    return await open_policy_request(room, REQUIREMENT, *resources)


async def _approve(room: Room, request_id: str) -> None:
    await approve_filed(room, request_id, FILED)


def _targets(arm: ArmSandbox) -> set[tuple[str, str, str | None]]:
    """The sandbox's attestations as (resource, assignment, reference id)."""
    return {
        (
            a["id"].lower().split("/providers/microsoft.policyinsights")[0],
            a["properties"]["policyAssignmentId"],
            a["properties"].get("policyDefinitionReferenceId"),
        )
        for a in arm.policy.attestations.items.values()
    }


def _puts(arm: ArmSandbox) -> list[int | None]:
    return [c.status for c in arm.calls(service="arm") if c.method == "PUT"]


async def test_attest_definition_only_requirement_attests_each_evaluating_assignment(
    room: Room, arm: ArmSandbox
) -> None:
    """kv-one gets one attestation per assignment of the definition (the initiative's names
    its policy), kv-two one; each carries the SharePoint link and SHA-256, and only the
    attested manual policies become Compliant in Azure Policy."""
    request_id = await _open(room, vault("kv-one"), vault("kv-two"))
    await _approve(room, request_id)
    [job] = await _attested(room)
    assert job.status == outbox.DONE
    assert _targets(arm) == {
        (vault("kv-one").lower(), AT_GROUP, None),
        (vault("kv-one").lower(), AT_SUB, None),
        (vault("kv-one").lower(), INITIATIVE, REFERENCE),
        (vault("kv-two").lower(), AT_SUB, None),
    }
    for attestation in arm.policy.attestations.items.values():
        properties = attestation["properties"]
        assert properties["complianceState"] == "Compliant"
        [evidence] = properties["evidence"]
        assert evidence["sourceUri"] == WEB_URL and DIGEST in evidence["description"]
        assert REQUIREMENT in properties["comments"] and "Rita Reviewer" in properties["comments"]
    states = {
        (s["resourceId"], s["policyAssignmentId"], s["policyDefinitionId"]): s["complianceState"]
        for s in arm.policy.records.values()
    }
    assert states[(vault("kv-one"), INITIATIVE, DEFINITION)] == "Compliant"
    assert states[(vault("kv-one"), INITIATIVE, OTHER_DEFINITION)] == "Unknown"
    assert states[(vault("kv-one"), AT_GROUP, DEFINITION)] == "Compliant"
    assert states[(vault("kv-two"), AT_SUB, DEFINITION)] == "Compliant"
    lookups = arm.calls("PolicyStates_ListQueryResultsForResource", service="arm")
    assert len(lookups) == 2
    assert {c.query["$filter"] for c in lookups} == {f"policyDefinitionId eq '{DEFINITION}'"}


async def test_attest_definition_job_run_twice_keeps_one_attestation_each(
    room: Room, arm: ArmSandbox
) -> None:
    """The same job delivered again finds the same assignments and replaces (200) the
    same three attestations of kv-one, adding none."""
    request_id = await _open(room, vault("kv-one"))
    await _approve(room, request_id)
    [first] = await _attested(room)
    store = _store(room)
    async with store.writing() as conn:
        row = outbox.job_row(
            POLICY_ATTEST_JOB, f"policy-attest|{request_id}", first.payload, cipher=store.cipher
        )
        await conn.execute(outbox_table.insert().values(**row))
    room.warden.client.app[WORKER].wake()
    jobs = await _attested(room)
    assert [j.status for j in jobs] == [outbox.DONE, outbox.DONE]
    assert len(arm.policy.attestations.items) == 3
    assert _puts(arm) == [201, 201, 201, 200, 200, 200]


async def test_attest_definition_resource_no_assignment_covers_gets_none_and_job_done(
    room: Room, arm: ArmSandbox
) -> None:
    """kv-gone is evaluated only under another definition: nothing is attested, no PUT is
    sent, and the job is done, not failed."""
    request_id = await _open(room, vault("kv-gone"))
    await _approve(room, request_id)
    [job] = await _attested(room)
    assert job.status == outbox.DONE and job.last_error is None
    assert arm.policy.attestations.items == {}
    assert _puts(arm) == []
    assert len(arm.calls("PolicyStates_ListQueryResultsForResource", service="arm")) == 1


async def test_attest_definition_lookup_refused_quarantines_with_the_reason(
    room: Room, arm: ArmSandbox
) -> None:
    """A 403 on the lookup of kv-one's assignments is not retried: the job is quarantined
    with the service's reason and nothing is attested."""
    request_id = await _open(room, vault("kv-one"))
    arm.add_fault(
        Fault(
            status=403,
            code="AuthorizationFailed",
            message="No read access to policy states of kv-one",
            method="POST",
            path="kv-one",
            times=None,
        )
    )
    await _approve(room, request_id)
    [job] = await _attested(room)
    assert job.status == outbox.QUARANTINED
    assert job.last_error is not None and "No read access" in job.last_error
    assert arm.policy.attestations.items == {} and _puts(arm) == []


async def test_attest_definition_lookup_unavailable_then_back_attests(
    room: Room, arm: ArmSandbox
) -> None:
    """A 503 on the lookup is retried: the assignments are read again and attested."""
    request_id = await _open(room, vault("kv-two"))
    arm.add_fault(Fault(status=503, method="POST", path="kv-two"))
    await _approve(room, request_id)
    [job] = await _attested(room)
    assert job.status == outbox.DONE
    assert _targets(arm) == {(vault("kv-two").lower(), AT_SUB, None)}
    lookups = arm.calls("PolicyStates_ListQueryResultsForResource", service="arm")
    assert [c.status for c in lookups] == [503, 200]


async def test_attest_definition_resource_azure_no_longer_knows_is_skipped(
    room: Room, arm: ArmSandbox
) -> None:
    """Azure answers 404 for kv-one (deleted since): kv-one is skipped, kv-two still gets
    its attestation and the job is done."""
    request_id = await _open(room, vault("kv-one"), vault("kv-two"))
    arm.add_fault(Fault(status=404, code="ResourceNotFound", method="POST", path="kv-one"))
    await _approve(room, request_id)
    [job] = await _attested(room)
    assert job.status == outbox.DONE
    assert _targets(arm) == {(vault("kv-two").lower(), AT_SUB, None)}
