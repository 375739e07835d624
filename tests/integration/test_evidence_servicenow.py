"""Evidence decisions reach ServiceNow: a remediation change per rejected request.

Warden with a catalog and the ServiceNow sandbox (no Sentinel, so anyone may review): the
request is opened, handed in and decided in a Teams channel; the ``itsm.evidence_outcome``
job it writes goes through the real ServiceNow client over HTTP to the sandbox.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from app import STORE, WORKER
from cards.verbs import CardVerb
from core.audit_chain import AuditAction
from core.settings.servicenow import ServiceNowSettings
from core.store import evidence as evidence_store
from core.store import evidence_audit, outbox
from core.store.evidence_outcomes import ITSM_EVIDENCE_JOB
from core.store.schema import outbox as outbox_table
from core.store.store import Store
from sandbox.servicenow import ServiceNowSandbox
from tests.integration.conftest import WardenFactory
from tests.integration.test_evidence_chat import CATALOG, OWNER, RITA, SAM, Room
from tests.support import channel_id

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)

ATTESTATION = "Restore test of the finance database on 2026-11-02: 41 minutes, all rows back."
DIGEST = hashlib.sha256(ATTESTATION.encode("utf-8")).hexdigest()
LINK = "https://contoso.sharepoint.com/sites/grc/Evidence/access-review-q4.pdf"


@pytest.fixture
async def room(tmp_path: Path, start_warden: WardenFactory, snow: ServiceNowSandbox) -> Room:
    """Warden with the two-requirement catalog and ServiceNow, installed in a channel."""
    catalog = tmp_path / "requirements.yaml"
    catalog.write_text(CATALOG, encoding="utf-8")
    servicenow = ServiceNowSettings(
        instance_url=snow.url,
        username=snow.username,
        password=SecretStr(snow.password),
        poll_seconds=3600,
    )
    warden = await start_warden(requirements_file=catalog, servicenow=servicenow)
    conversation = channel_id("compliance")
    await warden.install(conversation)
    return Room(warden, conversation)


def _store(room: Room) -> Store:
    store: Store = room.warden.client.app[STORE]
    return store


async def _open(room: Room, requirement: str) -> str:
    """Request evidence of ``requirement`` from the owner; the new request's id."""
    await room.say(f"request evidence {requirement} from {OWNER['aadObjectId']}")
    requests = await evidence_store.list_requests(_store(room), requirement=requirement)
    return requests[-1].id


async def _hand_in(room: Room, inputs: dict[str, str] | None = None) -> None:
    await room.click(
        CardVerb.EVIDENCE_SUBMIT,
        OWNER,
        inputs or {"kind": "attestation", "attestation": ATTESTATION},
    )


async def _reject(room: Room, reason: str) -> None:
    await room.click(CardVerb.EVIDENCE_REJECT, RITA, {"reason": reason})


async def _outcome_jobs(room: Room) -> list[outbox.JobRow]:
    return [j for j in await outbox.list_jobs(_store(room)) if j.kind == ITSM_EVIDENCE_JOB]


async def _delivered(room: Room) -> list[outbox.JobRow]:
    """Wait until no ``itsm.evidence_outcome`` job is left to run; those jobs."""

    async def idle() -> bool:
        return all(j.status not in outbox.UNFINISHED for j in await _outcome_jobs(room))

    await room.warden.client.app[WORKER].wait_until(idle)
    return await _outcome_jobs(room)


def _remediations(snow: ServiceNowSandbox, request_id: str) -> list[dict[str, Any]]:
    key = f"warden-evidence-{request_id}"
    return [r for r in snow.records("change_request") if r.get("correlation_id") == key]


def _notes(snow: ServiceNowSandbox, change: dict[str, Any]) -> list[str]:
    return [n["value"] for n in snow.work_notes("change_request", change["sys_id"])]


async def test_evidence_rejected_creates_one_remediation_change_with_the_reason(
    room: Room, snow: ServiceNowSandbox
) -> None:
    """A rejection → one change request with the request's correlation id: titled after the
    requirement, the reason, the reviewer and the link in its description, priority from
    the mapping's default (impact 2 × urgency 2 → 3), and a work note naming the rejection."""
    request_id = await _open(room, "ISO-A.5.15")
    await _hand_in(room, {"kind": "link", "link": LINK})
    await _reject(room, "The review is not signed off")
    jobs = await _delivered(room)
    assert [j.status for j in jobs] == [outbox.DONE]
    [change] = _remediations(snow, request_id)
    assert change["short_description"] == "Remediate ISO-A.5.15: Access reviews of privileged roles"
    assert "The review is not signed off" in change["description"]
    assert "Rita Reviewer" in change["description"] and LINK in change["description"]
    assert (change["impact"], change["urgency"], change["priority"]) == ("2", "2", "3")
    [note] = _notes(snow, change)
    assert "Evidence rejected by Rita Reviewer: The review is not signed off" in note
    assert snow.contract_problems == []
    store = room.warden.client.app[STORE]
    [written] = [
        e for e in await evidence_audit.audit_entries(store) if e.action is AuditAction.WRITTEN_BACK
    ]
    assert written.details["system"] == "servicenow"
    assert (written.details["decision"], written.details["record"]) == (
        "rejected",
        change["number"],
    )


async def test_evidence_no_servicenow_job_for_changes_requested_or_a_partial_approval(
    room: Room, snow: ServiceNowSandbox
) -> None:
    """Neither changes requested nor the first of two approvals ends a request: no job,
    nothing in ServiceNow."""
    request_id = await _open(room, "ISO-A.5.15")
    await _hand_in(room)
    await room.click(CardVerb.EVIDENCE_APPROVE, RITA)
    await room.click(CardVerb.EVIDENCE_REQUEST_CHANGES, SAM, {"comment": "Add the sign-off"})
    assert await _outcome_jobs(room) == []
    assert _remediations(snow, request_id) == []


async def test_evidence_rejection_written_again_updates_the_same_change(
    room: Room, snow: ServiceNowSandbox
) -> None:
    """The same request's rejection reaching ServiceNow a second time (a rejected request is
    final, so this is its outcome delivered again) updates the one change: two work notes,
    still one change; the evidence's SHA-256 is in the description."""
    request_id = await _open(room, "ISO-A.8.13")
    await _hand_in(room)
    await _reject(room, "No restore report attached")
    [first] = await _delivered(room)
    store = _store(room)
    async with store.writing() as conn:
        row = outbox.job_row(
            ITSM_EVIDENCE_JOB, "itsm|evidence|" + request_id, first.payload, cipher=store.cipher
        )
        await conn.execute(outbox_table.insert().values(**row))
    room.warden.client.app[WORKER].wake()
    jobs = await _delivered(room)
    assert [j.status for j in jobs] == [outbox.DONE, outbox.DONE]
    [change] = _remediations(snow, request_id)
    assert DIGEST in change["description"]
    notes = _notes(snow, change)
    assert len(notes) == 2
    assert all("Evidence rejected by Rita Reviewer: No restore report attached" in n for n in notes)


async def test_evidence_approved_after_rejection_notes_hash_and_closes_the_change(
    room: Room, snow: ServiceNowSandbox
) -> None:
    """With a remediation change for the request in ServiceNow, the final approval adds a
    work note naming both approvers and the evidence's SHA-256, and closes the change."""
    request_id = await _open(room, "ISO-A.5.15")
    made = snow.create(
        "change_request",
        {
            "short_description": "Remediate ISO-A.5.15: Access reviews of privileged roles",
            "correlation_id": f"warden-evidence-{request_id}",
            "state": "-1",
        },
    )
    await _hand_in(room)
    await room.click(CardVerb.EVIDENCE_APPROVE, RITA)
    await room.click(CardVerb.EVIDENCE_APPROVE, SAM)
    jobs = await _delivered(room)
    assert [j.status for j in jobs] == [outbox.DONE]
    [note] = _notes(snow, made)
    assert note.startswith("Evidence approved by Rita Reviewer, Sam Second")
    assert f"SHA-256 {DIGEST}" in note
    closed = snow.record("change_request", made["sys_id"])
    assert closed is not None and closed["state"] == "3"
    assert closed["close_code"] == "successful" and "approved" in closed["close_notes"]
    assert snow.contract_problems == []
    assert len(_remediations(snow, request_id)) == 1


async def test_evidence_approved_without_rejection_creates_no_change(
    room: Room, snow: ServiceNowSandbox
) -> None:
    """An approval with no remediation change for the request writes nothing to ServiceNow."""
    request_id = await _open(room, "ISO-A.8.13")
    await _hand_in(room)
    await room.click(CardVerb.EVIDENCE_APPROVE, RITA)
    jobs = await _delivered(room)
    assert [j.status for j in jobs] == [outbox.DONE]
    assert _remediations(snow, request_id) == []
    writes = [r for r in snow.requests if r.method in ("POST", "PATCH", "PUT")]
    assert writes == []


async def test_evidence_rejected_while_servicenow_down_delivered_when_back(
    room: Room, snow: ServiceNowSandbox
) -> None:
    """ServiceNow down when the reviewer rejects: the card answers at once, the job waits and
    retries; once ServiceNow is back the change is created, once."""
    request_id = await _open(room, "ISO-A.8.13")
    await _hand_in(room)
    snow.down()
    await _reject(room, "No restore report attached")
    assert "Rejected by Rita Reviewer" in str(room.reviewers_card())

    async def tried() -> bool:
        return any(j.attempts >= 1 for j in await _outcome_jobs(room))

    await room.warden.client.app[WORKER].wait_until(tried)
    assert _remediations(snow, request_id) == []
    snow.up()
    jobs = await _delivered(room)
    assert [j.status for j in jobs] == [outbox.DONE]
    [change] = _remediations(snow, request_id)
    assert len(_notes(snow, change)) == 1


async def test_evidence_rejection_with_ambiguous_correlation_id_quarantined_nothing_written(
    room: Room, snow: ServiceNowSandbox
) -> None:
    """Two changes already carry the request's correlation id: Warden writes to neither,
    creates none, and sets the job aside with the reason."""
    request_id = await _open(room, "ISO-A.8.13")
    key = f"warden-evidence-{request_id}"
    twins = [
        snow.create("change_request", {"short_description": f"Twin {n}", "correlation_id": key})
        for n in (1, 2)
    ]
    await _hand_in(room)
    await _reject(room, "No restore report attached")
    [job] = await _delivered(room)
    assert job.status == outbox.QUARANTINED
    assert job.last_error is not None and "several" in job.last_error
    after = _remediations(snow, request_id)
    assert [r["short_description"] for r in after] == ["Twin 1", "Twin 2"]
    assert all(_notes(snow, twin) == [] for twin in twins)
