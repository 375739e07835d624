# ruff: noqa: F811  (fixtures imported from test_audit_trail are parameters here)
"""Evidence filed in SharePoint and the Evidence Requests list kept current, against the
ARM and Graph sandboxes (site provisioned) and a local HTTPS evidence server.

The real ``EvidenceFiling`` and ``EvidenceListSync`` handlers run on outbox jobs written by
the store in the submission's transaction; links are fetched through the SSRF guard (the
test's policy allows the loopback server, as ``test_ssrf_fetch`` does).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.ssrf import stream
from core.audit_chain import AuditAction
from core.catalog import EvidenceKind
from core.errors import DeliveryError
from core.evidence import WARDEN, DecisionKind, Evidence, RequestStatus, Verdict
from core.store import evidence, evidence_audit
from core.store.evidence import EVIDENCE_FILE_JOB, EVIDENCE_LIST_JOB, filing_jobs, list_job
from core.store.outbox import Job
from core.store.store import Store
from graph.audit_mirror import AuditMirror
from graph.audit_verify import FILE_CHANGED, SharePointAccess, verify_configured
from graph.evidence_sync import EvidenceFiling, EvidenceListSync
from sandbox.graph import GraphSandbox
from tests.integration.test_audit_trail import (  # noqa: F401  (fixtures)
    HOST,
    OWNER,
    PERIOD,
    REQUIREMENT,
    REVIEWER,
    SITE,
    access,
    app_identity,
    arm,
    draft,
    graph,
    settle,
    store,
)
from tests.integration.test_ssrf_fetch import EvidenceServer, serve

REPORT = b"evidence: MFA enforced"


@pytest.fixture
async def site_files(tmp_path: Path) -> AsyncIterator[EvidenceServer]:
    """The local HTTPS evidence site (``/report.txt``)."""
    async with serve("evidence.warden.test", tmp_path) as server:
        yield server


@pytest.fixture
def filing(store: Store, access: SharePointAccess, site_files: EvidenceServer) -> EvidenceFiling:
    """The filing handler; links reach the local server only."""
    link_fetch = functools.partial(
        stream,
        policy=site_files.policy(),
        resolver=site_files.resolve,
        ssl_context=site_files.client_context,
    )
    return EvidenceFiling(
        store, access.graph, SITE, access.http, link_fetch=link_fetch, download_fetch=access.fetch
    )


def job(kind: str, payload: dict[str, object]) -> Job:
    """An outbox job as the worker hands it over."""
    return Job(1, kind, "k", None, payload, 0)


def library_items(graph: GraphSandbox) -> dict[str, dict[str, object]]:
    """Fields of the Evidence library's items, by file name."""
    site = graph.sharepoint.site_by_path(HOST, SITE.path)
    [lib] = [x for x in site.lists.values() if x.display_name == "Evidence"]
    return {str(i.fields.get("FileLeafRef", i.id)): dict(i.fields) for i in lib.items.values()}


async def submit(store: Store, request_id: str, item: Evidence) -> None:
    """The owner hands in ``item`` with the filing jobs, as the bot does."""
    current = await evidence.get(store, request_id)
    assert current is not None
    await evidence.submit(
        store, request_id, item, OWNER, seen=current.version, jobs=filing_jobs(request_id, "c1")
    )


async def test_filing_link_filed_with_path_columns_and_hash(
    store: Store, graph: GraphSandbox, filing: EvidenceFiling, site_files: EvidenceServer
) -> None:
    """A link is fetched, filed as v1-report.txt with columns, its hash on the submission."""
    request, _ = await evidence.open_request(store, draft())
    await submit(
        store, request.id, Evidence(kind=EvidenceKind.LINK, url=site_files.url("/report.txt"))
    )
    await filing(job(EVIDENCE_FILE_JOB, {"request": request.id, "conversation_id": "c1"}))
    record = await evidence.record(store, request.id)
    assert record is not None
    [sub] = record.submissions
    assert sub.sha256 == hashlib.sha256(REPORT).hexdigest() and sub.file_size == len(REPORT)
    assert sub.file_name == "v1-report.txt" and sub.item_id and sub.web_url
    fields = next(iter(library_items(graph).values()))
    assert fields["Sha256"] == sub.sha256 and fields["RequestId"] == request.id
    assert fields["EvidenceType"] == "Link" and fields["SubmittedBy"] == OWNER
    assert fields["RequirementId"] == REQUIREMENT


async def test_filed_link_is_audited_and_a_changed_copy_found_by_verify(
    store: Store,
    graph: GraphSandbox,
    access: SharePointAccess,
    filing: EvidenceFiling,
    site_files: EvidenceServer,
) -> None:
    """Filing a link appends a ``filed`` audit entry (item and SHA-256), so `audit verify`
    re-hashes the filed copy: clean, then a changed byte in SharePoint is named."""
    request, _ = await evidence.open_request(store, draft())
    url = site_files.url("/report.txt")
    await submit(store, request.id, Evidence(kind=EvidenceKind.LINK, url=url))
    await filing(job(EVIDENCE_FILE_JOB, {"request": request.id, "conversation_id": "c1"}))
    entries = await evidence_audit.audit_entries(store)
    [filed] = [e for e in entries if e.action is AuditAction.FILED]
    record = await evidence.record(store, request.id)
    assert record is not None
    [sub] = record.submissions
    assert filed.actor == WARDEN and filed.details["sha256"] == sub.sha256
    assert filed.details["itemId"] == sub.item_id and filed.details["submission"] == 1
    await settle(store, AuditMirror(store, access.graph, SITE))
    clean = await verify_configured(access, store)
    assert clean.ok and clean.files == 1
    library = await access.library()
    assert graph.files is not None and sub.item_id is not None
    path = graph.files.path(library.drive_id, sub.item_id)
    path.write_bytes(path.read_bytes().replace(b"MFA", b"mfa"))
    tampered = await verify_configured(access, store)
    assert not tampered.ok and FILE_CHANGED in str(tampered.finding)


async def test_filing_attestation_and_second_version_both_kept(
    store: Store, graph: GraphSandbox, filing: EvidenceFiling
) -> None:
    """An attestation is filed as v1-attestation.txt with the card's hash; v2 keeps v1."""
    request, _ = await evidence.open_request(store, draft())
    text = "All admins use MFA."
    digest = hashlib.sha256(text.encode()).hexdigest()
    att = Evidence(kind=EvidenceKind.ATTESTATION, text=text, sha256=digest)
    await submit(store, request.id, att)
    await filing(job(EVIDENCE_FILE_JOB, {"request": request.id}))
    current = await evidence.get(store, request.id)
    assert current is not None
    changes = Verdict(kind=DecisionKind.REQUEST_CHANGES, comment="add scope")
    await evidence.decide(store, request.id, changes, REVIEWER, seen=current.version)
    await submit(store, request.id, att)
    await filing(job(EVIDENCE_FILE_JOB, {"request": request.id}))
    record = await evidence.record(store, request.id)
    assert record is not None
    names = [s.file_name for s in record.submissions]
    assert names == ["v1-attestation.txt", "v2-attestation.txt"]
    assert all(s.sha256 == digest for s in record.submissions)
    assert len({s.item_id for s in record.submissions}) == 2
    assert len(library_items(graph)) == 2


async def test_filing_link_404_sends_the_request_back_to_its_owner(
    store: Store, filing: EvidenceFiling, site_files: EvidenceServer
) -> None:
    """A link answering 404 cannot be filed: the request goes back to its owner (changes
    requested by Warden, saying why), the link stays on the request, nothing is filed."""
    request, _ = await evidence.open_request(store, draft())
    await submit(store, request.id, Evidence(kind=EvidenceKind.LINK, url=site_files.url("/gone")))
    await filing(job(EVIDENCE_FILE_JOB, {"request": request.id}))
    record = await evidence.record(store, request.id)
    assert record is not None and record.submissions[0].item_id is None
    assert record.request.status is RequestStatus.CHANGES_REQUESTED
    [decision] = record.decisions
    assert decision.by == WARDEN and "404" in (decision.comment or "")
    assert record.submissions[0].url == site_files.url("/gone")


async def test_filing_link_503_is_retried(
    store: Store, filing: EvidenceFiling, site_files: EvidenceServer
) -> None:
    """A link whose host fails for now (5xx) is retried by the outbox, the request untouched."""
    request, _ = await evidence.open_request(store, draft())
    await submit(store, request.id, Evidence(kind=EvidenceKind.LINK, url=site_files.url("/busy")))
    with pytest.raises(DeliveryError) as raised:
        await filing(job(EVIDENCE_FILE_JOB, {"request": request.id}))
    assert raised.value.outcome.value == "retry"
    current = await evidence.get(store, request.id)
    assert current is not None and current.status is RequestStatus.SUBMITTED


async def test_list_item_follows_request_submitted_to_approved(
    store: Store, graph: GraphSandbox, access: SharePointAccess
) -> None:
    """The Evidence Requests item is created on submission, then updated to Approved."""
    sync = EvidenceListSync(store, access.graph, SITE)
    request, _ = await evidence.open_request(store, draft())
    att = Evidence(
        kind=EvidenceKind.ATTESTATION, text="ok", sha256=hashlib.sha256(b"ok").hexdigest()
    )
    await submit(store, request.id, att)
    await sync(job(EVIDENCE_LIST_JOB, list_job(request.id).payload))
    current = await evidence.get(store, request.id)
    assert current is not None
    await evidence.decide(
        store, request.id, Verdict(kind=DecisionKind.APPROVE), REVIEWER, seen=current.version
    )
    await sync(job(EVIDENCE_LIST_JOB, list_job(request.id).payload))
    site = graph.sharepoint.site_by_path(HOST, SITE.path)
    [lst] = [x for x in site.lists.values() if x.display_name == "Evidence Requests"]
    [item] = lst.items.values()
    assert item.fields["Status"] == "Approved" and item.fields["Approvals"] == 1
    assert item.fields["ApprovalsNeeded"] == 1 and item.fields["Period"] == PERIOD
    assert item.fields["Title"] == f"{REQUIREMENT} {request.id}"
