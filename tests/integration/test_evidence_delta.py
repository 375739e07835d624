"""Evidence-library change detection against the Graph sandbox, through real msgraph-sdk.

Warden files a file, mirrors its audit chain and writes the request's *Evidence Requests*
item with its own app registration; a person then changes things through the sandbox's
out-of-band control routes (as in SharePoint's own pages). ``ChangeWatch`` reads Graph delta
pages of two items each, so paging is exercised on every round.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.identity.aio import ClientSecretCredential

from core.audit_chain import AuditAction
from core.breaker import Breakers
from core.catalog import EvidenceKind
from core.crypto import PayloadCipher
from core.evidence import DecisionKind, Evidence, Verdict
from core.outside_changes import ChangeKind, RecordKind
from core.store import evidence, evidence_audit, evidence_filing, outbox
from core.store.delta import OUTSIDE_CHANGE_JOB
from core.store.evidence_audit import AUDIT_MIRROR_JOB
from core.store.outbox import Job
from core.store.store import Store
from graph.audit_mirror import AuditMirror
from graph.audit_verify import SharePointAccess, download_fetch
from graph.client import graph_client, graph_http
from graph.delta_watch import ChangeWatch
from graph.evidence_files import EvidencePath, iter_source
from graph.evidence_sync import request_fields
from graph.provision import provision_site
from graph.sharepoint import ListRef, create_item, list_by_name, site_by_path
from sandbox.arm import ArmSandbox, run_arm_sandbox
from sandbox.graph import GraphSandbox, run_graph_sandbox
from tests.integration.test_audit_trail import (
    CONTENT,
    FILE_NAME,
    HOST,
    OWNER,
    PERIOD,
    REQUIREMENT,
    REVIEWER,
    ROLES,
    SITE,
    audit_log,
    draft,
)
from tests.support import ENCRYPTION_KEY

AUDITORS = "19:auditors@thread.tacv2"
REPLACEMENT = b"%PDF-1.7\nnot the report that was reviewed\n"


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox: token endpoint and TLS CA."""
    async with run_arm_sandbox(sandbox=ArmSandbox(seed_examples=False)) as served:
        yield served


@pytest.fixture
async def graph(arm: ArmSandbox, tmp_path: Path) -> AsyncIterator[GraphSandbox]:
    """The Graph sandbox with one site."""
    async with run_graph_sandbox(arm, state_dir=tmp_path / "graph") as served:
        served.add_site(HOST, SITE.path)
        yield served


@pytest.fixture
def app_id(arm: ArmSandbox) -> str:
    """Warden's Graph app registration (its client id)."""
    return arm.register_client("warden-delta", "s3cret-delta", graph_roles=ROLES).client_id


@pytest.fixture
async def access(
    arm: ArmSandbox, graph: GraphSandbox, app_id: str
) -> AsyncIterator[SharePointAccess]:
    """Graph at the sandbox as Warden, the site provisioned."""
    async with (
        ClientSecretCredential(
            arm.tenant_id,
            app_id,
            "s3cret-delta",
            authority=arm.authority,
            connection_verify=str(arm.ca_path),
        ) as credential,
        graph_http(Breakers(), arm.ssl_context()) as http,
    ):
        client = graph_client(credential, http, base_url=graph.graph_url)
        assert not (await provision_site(client, SITE)).problems
        fetch = download_fetch(SITE, graph.graph_url, arm.ssl_context())
        yield SharePointAccess(client, SITE, http, fetch)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated SQLite store."""
    opened = Store.from_url(
        f"sqlite+aiosqlite:///{tmp_path / 'warden.db'}", cipher=PayloadCipher([ENCRYPTION_KEY])
    )
    await opened.upgrade()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def person(arm: ArmSandbox, graph: GraphSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """The sandbox's control API: out-of-band edits as a person."""
    async with httpx.AsyncClient(base_url=graph.url, verify=arm.ssl_context()) as client:
        yield client


@pytest.fixture
async def watch(store: Store, access: SharePointAccess, app_id: str) -> ChangeWatch:
    """Warden's records in SharePoint (file, request item, audit log) and a watch that has
    learned them (its first round)."""
    request, _ = await evidence.open_request(store, draft())
    library = await access.library()
    source = iter_source(lambda: _once(CONTENT), len(CONTENT))
    path = EvidencePath(REQUIREMENT, PERIOD, request.id, FILE_NAME)
    filed = await library.filer.file(source, path)
    await evidence_filing.record_filed(
        store,
        request.id,
        0,
        {"sha256": filed.sha256, "item_id": filed.item_id, "file_name": FILE_NAME},
    )
    await _submit_and_approve(store, request.id, filed)
    await mirror_all(store, access)
    record = await evidence.record(store, request.id)
    assert record is not None
    await create_item(access.graph, await requests_list(access), request_fields(record))
    watching = ChangeWatch(store, access, app_id=app_id, channel=AUDITORS, page_size=2)
    first = await watching.run_once()
    assert first.count == 0
    return watching


async def _submit_and_approve(store: Store, request_id: str, filed: Any) -> None:
    """The owner hands in the filed file; the reviewer approves it."""
    item = Evidence(
        kind=EvidenceKind.FILE,
        sha256=filed.sha256,
        file_name=FILE_NAME,
        file_size=filed.size,
        item_id=filed.item_id,
        web_url=filed.web_url,
    )
    found = await evidence.get(store, request_id)
    assert found is not None
    step = await evidence.submit(store, request_id, item, OWNER, seen=found.version)
    verdict = Verdict(kind=DecisionKind.APPROVE)
    await evidence.decide(store, request_id, verdict, REVIEWER, seen=step.request.version)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    """``data`` as one chunk."""
    yield data


async def requests_list(access: SharePointAccess) -> ListRef:
    """The *Evidence Requests* list of the site."""
    site = await site_by_path(access.graph, SITE)
    found = await list_by_name(access.graph, site.id or "", "Evidence Requests")
    assert found is not None and found.id
    return ListRef(site.id or "", found.id)


async def mirror_all(store: Store, access: SharePointAccess) -> None:
    """Run every pending audit.mirror job (as the outbox worker would), in order."""
    mirror = AuditMirror(store, access.graph, SITE)
    pending = await outbox.list_jobs(store, outbox.PENDING, limit=1000)
    for row in sorted(pending, key=lambda job: job.id):
        if row.kind == AUDIT_MIRROR_JOB:
            await mirror(Job(row.id, row.kind, "audit|chain", None, row.payload, 0))
            await outbox.finish(store, row.id)


async def card_jobs(store: Store) -> list[dict[str, Any]]:
    """The payloads of the auditors' card jobs, oldest first."""
    rows = await outbox.list_jobs(store, limit=1000)
    found = [row for row in rows if row.kind == OUTSIDE_CHANGE_JOB]
    assert all(row.conversation_id == AUDITORS for row in found)
    return [row.payload for row in sorted(found, key=lambda row: row.id)]


def evidence_file(graph: GraphSandbox) -> tuple[str, str]:
    """The drive id and item id of the filed evidence file."""
    site = graph.sharepoint.site_by_path(HOST, SITE.path)
    [library] = [entry for entry in site.lists.values() if entry.drive_id]
    [item] = [entry for entry in library.drive_items.values() if entry.name == FILE_NAME]
    return library.drive_id, item.id


async def test_delta_file_replaced_out_of_band_alerts_with_both_hashes(
    store: Store, graph: GraphSandbox, watch: ChangeWatch, person: httpx.AsyncClient
) -> None:
    """A person replacing the filed file: one audit entry and one card, hashes named."""
    drive_id, item_id = evidence_file(graph)
    url = f"/_sandbox/sharepoint/drives/{drive_id}/items/{item_id}/content"
    (await person.put(url, content=REPLACEMENT)).raise_for_status()
    report = await watch.run_once()
    [change] = report.changes["evidence"]
    assert (change.record, change.change) == (RecordKind.EVIDENCE_FILE, ChangeKind.REPLACED)
    assert change.expected_hash == hashlib.sha256(CONTENT).hexdigest()
    assert change.found_hash == hashlib.sha256(REPLACEMENT).hexdigest()
    assert change.who.startswith("Megan Bowen")
    last = (await evidence_audit.audit_entries(store))[-1]
    assert last.action is AuditAction.CHANGED_OUTSIDE_WARDEN
    assert last.details["foundHash"] == change.found_hash and last.actor == change.who
    [card] = await card_jobs(store)
    assert card["summary"] is False and card["changes"][0]["found_hash"] == change.found_hash


async def test_delta_request_column_edited_names_the_column(
    store: Store, watch: ChangeWatch, access: SharePointAccess, person: httpx.AsyncClient
) -> None:
    """A person setting Status to Rejected on the request's item: the card says which."""
    ref = await requests_list(access)
    url = f"/_sandbox/sharepoint/lists/{ref.list_id}/items/1?by=Adele%20Vance"
    (await person.patch(url, json={"fields": {"Status": "Rejected"}})).raise_for_status()
    report = await watch.run_once()
    [change] = report.changes["requests"]
    assert change.change is ChangeKind.EDITED and change.who.startswith("Adele Vance")
    assert "Status says 'Rejected', Warden recorded 'Approved'" in change.detail
    assert len(await card_jobs(store)) == 1


async def test_delta_audit_item_deleted_names_the_lost_hash(
    store: Store, graph: GraphSandbox, watch: ChangeWatch, person: httpx.AsyncClient
) -> None:
    """A person deleting the Audit Log item of seq 2: the card names seq 2 and its hash."""
    log, by_seq = audit_log(graph)
    url = f"/_sandbox/sharepoint/lists/{log.id}/items/{by_seq[2].id}"
    (await person.delete(url)).raise_for_status()
    report = await watch.run_once()
    [change] = report.changes["audit"]
    assert (change.change, change.name) == (ChangeKind.DELETED, "Seq 2")
    assert change.expected_hash == (await evidence_audit.audit_entries(store))[1].hash
    [card] = await card_jobs(store)
    assert card["changes"][0]["name"] == "Seq 2"


async def test_delta_wardens_own_writes_post_no_card(
    store: Store, watch: ChangeWatch, access: SharePointAccess
) -> None:
    """Warden mirroring new audit entries (a second request): no change, no card."""
    await evidence.open_request(store, draft("ISO27001-A.5.1"))
    await mirror_all(store, access)
    report = await watch.run_once()
    assert report.count == 0 and await card_jobs(store) == []


async def test_delta_token_expired_resyncs_with_one_summary_card(
    store: Store,
    graph: GraphSandbox,
    watch: ChangeWatch,
    person: httpx.AsyncClient,
    access: SharePointAccess,
) -> None:
    """410 Gone after two audit items were changed: a resync, one summary card of both."""
    log, by_seq = audit_log(graph)
    items = f"/_sandbox/sharepoint/lists/{log.id}/items"
    edit = {"fields": {"Actor": "someone@else"}}
    (await person.patch(f"{items}/{by_seq[1].id}", json=edit)).raise_for_status()
    (await person.delete(f"{items}/{by_seq[3].id}")).raise_for_status()
    (await person.post("/_sandbox/delta/expire")).raise_for_status()
    report = await watch.run_once()
    assert sorted(report.resynced) == ["audit", "evidence", "requests"]
    assert sorted(c.change for c in report.changes["audit"]) == ["deleted", "edited"]
    assert report.changes["evidence"] == [] and report.changes["requests"] == []
    gone = [call for call in graph.calls() if call.status == 410]
    assert len(gone) == 3
    [card] = await card_jobs(store)
    assert card["summary"] is True and len(card["changes"]) == 2
    await mirror_all(store, access)
    assert (await watch.run_once()).count == 0
