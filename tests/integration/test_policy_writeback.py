"""Approved policy evidence written back to Azure Policy, and ``GET /api/posture``.

Warden with a catalog, connected to the ARM sandbox (its Policy Insights, Entra ID and
Graph) and with ``WARDEN_POLICY_SCOPES`` set, on SQLite and PostgreSQL. A policy request is
opened as the poller opens one, handed in and approved with Teams card clicks; the
``policy.attest`` job written with the approval goes through the real Policy Insights client
over TLS to the sandbox. The polled scope is another resource group, so the poller running
beside the test never resolves the test's requests.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from app import WORKER
from core.audit_chain import AuditAction
from core.store import evidence as evidence_store
from core.store import evidence_audit, outbox
from core.store.posture import POLICY_ATTEST_JOB
from core.store.schema import outbox as outbox_table
from sandbox.arm import ArmSandbox, Fault, run_arm_sandbox
from sandbox.openid import OpenIdSandbox, SigningKey, mint, serve_openid_sandbox_in_thread
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
from tests.integration.test_webhook_entra import APP_ID, TENANT, _claims

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)

SUB = "0b5d1c4e-7f3a-4f4e-9a51-2f7c5e1d9a10"
SCOPE = f"/subscriptions/{SUB}"
MANUAL = f"{SCOPE}/providers/Microsoft.Authorization/policyAssignments/key-rotation-review"
ROTATION = f"{SCOPE}/providers/Microsoft.Authorization/policyAssignments/key-rotation-90d"
DEFINITION = "/providers/Microsoft.Authorization/policyDefinitions/0a914e76-4921-4c19-b460"
REVIEWERS = "6f4c1b3e-2a8d-4b9e-9c1a-0d2e3f4a5b6c"
CATALOG = f"""\
requirements:
  - id: CIS-8.5
    title: Key Vault keys are rotated
    guidance: The rotation report of each vault.
    policy_assignments: ["{MANUAL}", "{ROTATION}"]
    evidence: [link, attestation]
    owner: owner@contoso.com
    reviewers: ["{REVIEWERS}"]
    due_days: 30
"""
LINK = "https://contoso.example/reports/key-rotation-q4.pdf"
WEB_URL = "https://contoso.sharepoint.com/sites/grc/Evidence/CIS-8.5/key-rotation-q4.pdf"
DIGEST = hashlib.sha256(b"key rotation report").hexdigest()


def vault(name: str) -> str:
    """The resource id of a key vault (outside the polled resource group)."""
    return f"{SCOPE}/resourceGroups/rg-keys/providers/Microsoft.KeyVault/vaults/{name}"


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox over TLS, without the examples' data; Rita reviews CIS-8.5."""
    sandbox = ArmSandbox(seed_examples=False)
    sandbox.add_user(
        "Rita Reviewer", "rita@contoso.com", object_id=RITA["aadObjectId"], groups=[REVIEWERS]
    )
    async with run_arm_sandbox(sandbox=sandbox) as served:
        yield served


@pytest.fixture
async def room(tmp_path: Path, start_warden: WardenFactory, arm: ArmSandbox) -> Room:
    """Warden attesting to the ARM sandbox, installed in the compliance channel."""
    return await policy_room(tmp_path, start_warden, arm, CATALOG, SCOPE)


FILED = FiledLink(LINK, WEB_URL, "01ABCDEF", DIGEST, "key-rotation-q4.pdf")
_store, _attest_jobs, _attested = store_of, attest_jobs, attested


async def _open(room: Room, *resources: str) -> str:
    return await open_policy_request(room, "CIS-8.5", *resources)


async def _approve(room: Room, request_id: str) -> None:
    await approve_filed(room, request_id, FILED)


def _attestations(arm: ArmSandbox) -> dict[str, dict[str, Any]]:
    """The sandbox's attestations by lower-cased id."""
    return arm.policy.attestations.items


async def test_writeback_approved_policy_request_attests_each_resource_and_assignment(
    room: Room, arm: ArmSandbox
) -> None:
    """Two vaults × two assignments: four Compliant attestations, each with the SharePoint
    link and the SHA-256 as evidence, the requirement and approver in the comments, and an
    expiry 90 days after the due date."""
    request_id = await _open(room, vault("kv-one"), vault("kv-two"))
    await _approve(room, request_id)
    [job] = await _attested(room)
    assert job.status == outbox.DONE
    found = _attestations(arm)
    assert len(found) == 4
    pairs = {
        (
            a["id"].lower().split("/providers/microsoft.policyinsights")[0],
            a["properties"]["policyAssignmentId"],
        )
        for a in found.values()
    }
    assert pairs == {
        (vault(v).lower(), assignment)
        for v in ("kv-one", "kv-two")
        for assignment in (MANUAL, ROTATION)
    }
    for attestation in found.values():
        properties = attestation["properties"]
        assert properties["complianceState"] == "Compliant"
        [evidence] = properties["evidence"]
        assert evidence["sourceUri"] == WEB_URL and DIGEST in evidence["description"]
        assert "CIS-8.5" in properties["comments"] and "Rita Reviewer" in properties["comments"]
        request = await evidence_store.get(_store(room), request_id)
        assert request is not None
        expires = datetime.fromisoformat(properties["expiresOn"].replace("Z", "+00:00"))
        assert (expires.date() - request.due).days == 90


async def test_writeback_job_run_twice_keeps_one_attestation_each(
    room: Room, arm: ArmSandbox
) -> None:
    """The same job delivered again replaces the same attestations (200), adds none."""
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
    assert len(_attestations(arm)) == 2
    puts = [c.status for c in arm.calls(service="arm") if c.method == "PUT"]
    assert puts == [201, 201, 200, 200]
    written = [
        e
        for e in await evidence_audit.audit_entries(store)
        if e.action is AuditAction.WRITTEN_BACK and e.request_id == request_id
    ]
    assert [(e.details["system"], e.details["attestations"]) for e in written] == [
        ("azure-policy", 2)
    ], "the audit trail says it once, however often the job runs"


async def test_writeback_policy_insights_503_is_retried(room: Room, arm: ArmSandbox) -> None:
    """A 503 on the first PUT: the PUT is sent again and the attestations are written."""
    request_id = await _open(room, vault("kv-one"))
    arm.add_fault(Fault(status=503, method="PUT"))
    await _approve(room, request_id)
    [job] = await _attested(room)
    assert job.status == outbox.DONE
    assert len(_attestations(arm)) == 2
    puts = [c.status for c in arm.calls(service="arm") if c.method == "PUT"]
    assert puts[0] == 503 and puts[1:] == [201, 201]


async def test_writeback_policy_insights_400_quarantines_with_the_reason(
    room: Room, arm: ArmSandbox
) -> None:
    """A 400 is not retried: the job is quarantined, its error names the service's reason."""
    request_id = await _open(room, vault("kv-one"))
    arm.add_fault(
        Fault(
            status=400,
            code="InvalidRequestContent",
            message="The evidence source is refused",
            method="PUT",
            times=None,
        )
    )
    await _approve(room, request_id)
    [job] = await _attested(room)
    assert job.status == outbox.QUARANTINED
    assert job.last_error is not None and "The evidence source is refused" in job.last_error
    assert len([c for c in arm.calls(service="arm") if c.method == "PUT"]) == 1
    assert _attestations(arm) == {}


async def test_posture_lists_attested_and_pending_with_filters_and_paging(room: Room) -> None:
    """The approved request is attested-compliant (with its SharePoint link) under each
    assignment, an open one pending-evidence; filters and pages narrow the list."""
    approved = await _open(room, vault("kv-one"))
    await _approve(room, approved)
    await _attested(room)
    pending = await _open(room, vault("kv-two"))
    client = room.warden.client
    response = await client.get("/api/posture")
    assert response.status == 200
    listed = await response.json()
    by = {(p["resourceId"], p["policyId"]): p for p in listed}
    assert len(listed) == 4
    for assignment in (MANUAL, ROTATION):
        done, waiting = by[(vault("kv-one"), assignment)], by[(vault("kv-two"), assignment)]
        assert (done["status"], done["evidenceRef"]) == ("attested-compliant", WEB_URL)
        assert (waiting["status"], waiting["evidenceRef"]) == ("pending-evidence", pending)
        assert done["requirementId"] == "CIS-8.5" and done["evaluatedAtUtc"]
    only = await (await client.get("/api/posture?status=pending-evidence")).json()
    assert {p["resourceId"] for p in only} == {vault("kv-two")} and len(only) == 2
    assert await (await client.get("/api/posture?requirement=ISO-A.8.13")).json() == []
    first = await client.get("/api/posture?limit=3")
    cursor = first.headers["x-next-cursor"]
    second = await client.get("/api/posture", params={"limit": "3", "cursor": cursor})
    assert "x-next-cursor" not in second.headers
    paged = await first.json() + await second.json()
    assert paged == listed
    bad = await client.get("/api/posture?status=compliant")
    assert bad.status == 400 and (await bad.json())["field"] == "status"


async def test_posture_route_in_openapi_document(room: Room) -> None:
    """The served OpenAPI document describes GET /api/posture and the PolicyPosture schema."""
    document = await (await room.warden.client.get("/openapi.json")).json()
    operation = document["paths"]["/api/posture"]["get"]
    assert operation["operationId"] == "listPosture"
    assert {p["name"] for p in operation["parameters"]} == {
        "requirement",
        "status",
        "limit",
        "cursor",
    }
    assert "PolicyPosture" in document["components"]["schemas"]


async def test_posture_requires_entra_bearer_when_configured(
    start_warden: WardenFactory,
) -> None:
    """With Entra bearers accepted, a token for Warden from the allowed tenant gets 200;
    none, another audience or a forged signature gets a 401 problem."""
    key = SigningKey.generate("entra-key", endorsements=())
    forger = SigningKey.generate("entra-key", endorsements=())
    with serve_openid_sandbox_in_thread(sandbox=OpenIdSandbox(keys=[key])) as openid:
        warden = await start_warden(
            microsoft_app_id=APP_ID,
            bot_openid_metadata_url=openid.metadata_url,
            webhook_entra_tenant_ids=TENANT,
            webhook_entra_metadata_url=openid.metadata_url,
        )

        async def status(token: str | None) -> int:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = await warden.client.get("/api/posture", headers=headers)
            if response.status == 401:
                assert response.content_type == "application/problem+json"
            return response.status

        assert await status(mint(_claims(), key)) == 200
        assert await status(None) == 401
        assert await status(mint(_claims(aud="another-app"), key)) == 401
        assert await status(mint(_claims(), forger)) == 401
