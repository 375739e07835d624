"""Evidence requests in the store, on SQLite and PostgreSQL: dedupe, journey, audit chain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlalchemy import text

from core.audit_chain import AuditAction, verify
from core.catalog import EvidenceKind
from core.crypto import PayloadCipher
from core.errors import RequestNotFound, SeparationOfDuties, StaleRequest
from core.evidence import (
    WARDEN,
    DecisionKind,
    Evidence,
    RequestDraft,
    RequestSource,
    RequestStatus,
    Verdict,
)
from core.store import evidence, evidence_audit, outbox
from core.store.store import Store
from tests.support import ENCRYPTION_KEY

OWNER, BOB, CAROL = "owner@contoso.com", "bob@contoso.com", "carol@contoso.com"
SCOPE = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-{n}"
APPROVE = Verdict(kind=DecisionKind.APPROVE)
LINK = Evidence(kind=EvidenceKind.LINK, url="https://contoso.sharepoint.com/evidence/1")
SECRET_TEXT = "Canary attestation: backups restored on FIN-SRV-02"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A migrated store with an encryption key."""
    opened = Store.from_url(database_url, cipher=PayloadCipher([ENCRYPTION_KEY]))
    await opened.upgrade()
    try:
        yield opened
    finally:
        await opened.close()


def _draft(n: int = 0, approvals: int = 2) -> RequestDraft:
    return RequestDraft(
        requirement_id="ISO27001-A.8.13",
        scope=SCOPE.format(n=n),
        period="2026-Q4",
        owner=OWNER,
        requested_by=WARDEN,
        source=RequestSource.POLICY,
        due=date(2026, 12, 10),
        approvals_needed=approvals,
        resources=(SCOPE.format(n=n),),
    )


async def _chain_ok(store: Store, entries: int) -> None:
    chain = await evidence_audit.audit_entries(store)
    assert [entry.seq for entry in chain] == list(range(1, entries + 1))
    result = verify(chain)
    assert result.ok, result.reason


async def test_open_request_concurrent_same_key_creates_one(store: Store) -> None:
    """Ten concurrent opens of one (requirement, scope) create one request; all get it."""
    results = await asyncio.gather(*(evidence.open_request(store, _draft()) for _ in range(10)))
    assert sum(created for _, created in results) == 1
    assert len({request.id for request, _ in results}) == 1
    assert len(await evidence.list_requests(store)) == 1
    await _chain_ok(store, 1)


async def test_open_request_after_final_opens_new(store: Store) -> None:
    """Once resolved by policy the key is free: a new non-compliance opens a new request."""
    first, _ = await evidence.open_request(store, _draft())
    resolved = await evidence.resolve_by_policy(store, first.requirement_id, SCOPE.format(n=0))
    assert resolved is not None and resolved.status is RequestStatus.RESOLVED_BY_POLICY
    again = await evidence.resolve_by_policy(store, first.requirement_id, SCOPE.format(n=0))
    assert again is None
    second, created = await evidence.open_request(store, _draft())
    assert created and second.id != first.id
    open_now = await evidence.list_requests(store, status=RequestStatus.OPEN)
    assert [request.id for request in open_now] == [second.id]


async def test_full_journey_audit_chain_verifies(store: Store) -> None:
    """Open → submit → changes → resubmit → two approvals: approved, recorded, chain verifies."""
    request, _ = await evidence.open_request(store, _draft(approvals=2))
    step = await evidence.submit(store, request.id, LINK, OWNER, seen=request.version)
    changes = Verdict(kind=DecisionKind.REQUEST_CHANGES, comment="Show Q4 only")
    step = await evidence.decide(store, request.id, changes, BOB, seen=step.request.version)
    attestation = Evidence(kind=EvidenceKind.ATTESTATION, text=SECRET_TEXT)
    step = await evidence.submit(store, request.id, attestation, OWNER, seen=step.request.version)
    step = await evidence.decide(store, request.id, APPROVE, BOB, seen=step.request.version)
    with pytest.raises(SeparationOfDuties):
        await evidence.decide(store, request.id, APPROVE, OWNER, seen=step.request.version)
    step = await evidence.decide(store, request.id, APPROVE, CAROL, seen=step.request.version)
    assert step.request.status is RequestStatus.APPROVED

    record = await evidence.record(store, request.id)
    assert record is not None and record.request == await evidence.get(store, request.id)
    assert record.request.version == 6
    assert [s.version for s in record.submissions] == [1, 2]
    assert record.submissions[1].text == SECRET_TEXT
    assert [(d.kind, d.by, d.submission) for d in record.decisions] == [
        (DecisionKind.REQUEST_CHANGES, BOB, 1),
        (DecisionKind.APPROVE, BOB, 2),
        (DecisionKind.APPROVE, CAROL, 2),
    ]
    chain = await evidence_audit.audit_entries(store)
    assert [entry.action for entry in chain] == [
        AuditAction.REQUESTED,
        AuditAction.SUBMITTED,
        AuditAction.CHANGES_REQUESTED,
        AuditAction.SUBMITTED,
        AuditAction.APPROVED,
        AuditAction.APPROVED,
    ]
    await _chain_ok(store, 6)


async def test_stale_action_refused_and_writes_nothing(store: Store) -> None:
    """Two reviewers click the same card: the second is told who approved; one entry added."""
    request, _ = await evidence.open_request(store, _draft(approvals=1))
    step = await evidence.submit(store, request.id, LINK, OWNER, seen=1)
    seen = step.request.version
    results = await asyncio.gather(
        evidence.decide(store, request.id, APPROVE, BOB, seen=seen),
        evidence.decide(store, request.id, APPROVE, CAROL, seen=seen),
        return_exceptions=True,
    )
    stale = [r for r in results if isinstance(r, StaleRequest)]
    assert len(stale) == 1 and stale[0].status == "approved"
    assert stale[0].by in (BOB, CAROL)
    await _chain_ok(store, 3)
    with pytest.raises(RequestNotFound):
        await evidence.submit(store, "no-such-request", LINK, OWNER, seen=1)


async def test_concurrent_submissions_keep_chain_intact(store: Store) -> None:
    """Twenty submissions at once, to twenty requests: one unbroken chain of 40 entries."""
    opened = [(await evidence.open_request(store, _draft(n)))[0] for n in range(20)]
    steps = await asyncio.gather(
        *(evidence.submit(store, r.id, LINK, OWNER, seen=r.version) for r in opened)
    )
    assert all(step.request.status is RequestStatus.SUBMITTED for step in steps)
    await _chain_ok(store, 40)


async def test_audit_mirror_job_per_entry_in_chain_order(store: Store) -> None:
    """Each entry has its audit.mirror job, in chain order, one at a time; marking is once."""
    request, _ = await evidence.open_request(store, _draft())
    await evidence.submit(store, request.id, LINK, OWNER, seen=request.version)
    jobs = sorted(
        (
            job
            for job in await outbox.list_jobs(store)
            if job.kind == evidence_audit.AUDIT_MIRROR_JOB
        ),
        key=lambda job: job.id,
    )
    assert [job.payload for job in jobs] == [
        {"seq": 1, "requestId": request.id},
        {"seq": 2, "requestId": request.id},
    ]
    claimed = await outbox.claim(store, limit=10, lease_seconds=30)
    assert [job.payload["seq"] for job in claimed] == [1]
    (entry,) = await evidence_audit.audit_entries(store, after_seq=0, limit=1)
    assert await evidence_audit.mark_mirrored(store, entry.seq, "item-1")
    assert not await evidence_audit.mark_mirrored(store, entry.seq, "item-1")


async def test_attestation_and_audit_sealed_at_rest(store: Store) -> None:
    """An attestation's text is neither in its row nor in the audit log in clear text."""
    request, _ = await evidence.open_request(store, _draft())
    attestation = Evidence(kind=EvidenceKind.ATTESTATION, text=SECRET_TEXT)
    await evidence.submit(store, request.id, attestation, OWNER, seen=request.version)
    async with store.reading() as conn:
        texts = [
            row[0] for row in await conn.execute(text("SELECT text FROM evidence_submissions"))
        ]
        bodies = [row[0] for row in await conn.execute(text("SELECT body FROM audit_entries"))]
    assert texts and bodies
    assert not any("Canary" in value for value in texts + bodies)
    chain = await evidence_audit.audit_entries(store)
    assert chain[-1].details["text"] == SECRET_TEXT
