"""The audit trail mirrored to SharePoint, verified and exported, against the sandboxes.

The real msgraph-sdk and azure-identity talk to the ARM and Graph sandboxes over TLS; the
site is provisioned by ``graph.provision``; an evidence file is filed by the real
``EvidenceFiler``; the outbox worker runs the ``audit.mirror`` handler. Tampering goes
straight into the sandbox's own data (its list items and stored file bytes), as an insider
with SharePoint access would.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import sys
import time
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from azure.identity.aio import ClientSecretCredential

from core.audit_chain import canonical_json, entry_hash
from core.breaker import Breakers
from core.catalog import EvidenceKind
from core.crypto import PayloadCipher
from core.errors import DeliveryError, Outcome
from core.evidence import DecisionKind, Evidence, RequestDraft, RequestSource, Verdict
from core.settings.outbox import OutboxSettings
from core.store import evidence, evidence_audit, outbox
from core.store.evidence_audit import AUDIT_MIRROR_JOB, AUDIT_ORDERING_KEY
from core.store.outbox import Job
from core.store.store import Store
from core.worker import Handler, OutboxWorker
from graph.audit_export import export
from graph.audit_mirror import AuditMirror, wait_for_sharepoint
from graph.audit_verify import (
    COLUMN_CHANGED,
    FILE_CHANGED,
    FILE_MISSING,
    SharePointAccess,
    VerifyReport,
    download_fetch,
    verify_configured,
)
from graph.client import graph_client, graph_http
from graph.evidence_files import EvidencePath, iter_source
from graph.provision import provision_site
from graph.sharepoint import SitePath
from sandbox.arm import ArmSandbox, run_arm_sandbox
from sandbox.graph import Fault, GraphSandbox, run_graph_sandbox
from sandbox.graph_store import Item, SpList
from tests.support import ENCRYPTION_KEY

HOST = "contoso.sharepoint.com"
SITE = SitePath(HOST, "sites/Evidence")
ROLES = ["Sites.Manage.All", "Sites.ReadWrite.All"]
APP = str(Path(__file__).resolve().parents[2] / "app.py")
REQUIREMENT, PERIOD = "ISO27001-A.8.13", "2026-Q4"
OWNER, REVIEWER = "owner@contoso.com", "reviewer@contoso.com"
FILE_NAME = "backup-restore-report.pdf"
CONTENT = b"%PDF-1.7\n" + random.Random(8).randbytes(50_000)


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox: token endpoint and TLS CA."""
    async with run_arm_sandbox(sandbox=ArmSandbox(seed_examples=False)) as served:
        yield served


@pytest.fixture
async def graph(arm: ArmSandbox, tmp_path: Path) -> AsyncIterator[GraphSandbox]:
    """The Graph sandbox with one site, files kept under ``tmp_path``."""
    async with run_graph_sandbox(arm, state_dir=tmp_path / "graph") as served:
        served.add_site(HOST, SITE.path)
        yield served


@pytest.fixture
def app_identity(arm: ArmSandbox) -> tuple[str, str]:
    """Client id and secret of Warden's app registration (manage and write sites)."""
    app = arm.register_client("warden-audit", graph_roles=ROLES)
    return app.client_id, app.secret


@pytest.fixture
async def access(
    arm: ArmSandbox, graph: GraphSandbox, app_identity: tuple[str, str]
) -> AsyncIterator[SharePointAccess]:
    """Graph at the sandbox, the site provisioned, downloads through the SSRF guard."""
    client_id, secret = app_identity
    async with (
        ClientSecretCredential(
            arm.tenant_id,
            client_id,
            secret,
            authority=arm.authority,
            connection_verify=str(arm.ca_path),
        ) as credential,
        graph_http(Breakers(), arm.ssl_context()) as http,
    ):
        client = graph_client(credential, http, base_url=graph.graph_url)
        report = await provision_site(client, SITE)
        assert not report.problems
        fetch = download_fetch(SITE, graph.graph_url, arm.ssl_context())
        yield SharePointAccess(client, SITE, http, fetch)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated SQLite store."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'warden.db'}"
    opened = Store.from_url(url, cipher=PayloadCipher([ENCRYPTION_KEY]))
    await opened.upgrade()
    try:
        yield opened
    finally:
        await opened.close()


@dataclass
class Journey:
    """The request that went through the flow, and its filed file's drive item."""

    request_id: str
    item_id: str
    drive_id: str


def draft(requirement: str = REQUIREMENT) -> RequestDraft:
    """A chat request to the owner, one approval needed."""
    return RequestDraft(
        requirement_id=requirement,
        period=PERIOD,
        owner=OWNER,
        requested_by=REVIEWER,
        source=RequestSource.CHAT,
        due=date(2026, 12, 10),
        approvals_needed=1,
    )


async def settle(store: Store, handler: Handler) -> None:
    """Run the outbox with ``handler`` for audit.mirror until no job is left to run."""

    async def settled() -> bool:
        found = await outbox.counts(store)
        return not found.get(outbox.PENDING) and not found.get(outbox.RUNNING)

    settings = OutboxSettings(poll_seconds=0.05, backoff_base_seconds=0.01)
    worker = OutboxWorker(store, {AUDIT_MIRROR_JOB: handler}, settings)
    await worker.start()
    try:
        await worker.wait_until(settled, within=30)
    finally:
        await worker.stop()


@pytest.fixture
async def journey(store: Store, access: SharePointAccess) -> Journey:
    """Open → submit a filed file → approve; the outbox mirrors the chain (3 entries)."""
    request, _ = await evidence.open_request(store, draft())
    library = await access.library()
    source = iter_source(lambda: _chunks(CONTENT), len(CONTENT))
    filed = await library.filer.file(
        source, EvidencePath(REQUIREMENT, PERIOD, request.id, FILE_NAME)
    )
    item = Evidence(
        kind=EvidenceKind.FILE,
        sha256=filed.sha256,
        file_name=FILE_NAME,
        file_size=filed.size,
        item_id=filed.item_id,
        web_url=filed.web_url,
    )
    step = await evidence.submit(store, request.id, item, OWNER, seen=request.version)
    approve = Verdict(kind=DecisionKind.APPROVE)
    await evidence.decide(store, request.id, approve, REVIEWER, seen=step.request.version)
    await settle(store, AuditMirror(store, access.graph, SITE))
    return Journey(request.id, filed.item_id, library.drive_id)


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    """``data`` in 16 kB pieces."""
    for start in range(0, len(data), 16_000):
        yield data[start : start + 16_000]


def audit_log(graph: GraphSandbox) -> tuple[SpList, dict[int, Item]]:
    """The sandbox's Audit Log list and its items by Seq."""
    site = graph.sharepoint.site_by_path(HOST, SITE.path)
    [log] = [entry for entry in site.lists.values() if entry.display_name == "Audit Log"]
    return log, {int(item.fields["Seq"]): item for item in log.items.values()}


def mirror_job(seq: int) -> Job:
    """The audit.mirror job of entry ``seq``, as the worker would hand it over."""
    return Job(seq, AUDIT_MIRROR_JOB, AUDIT_ORDERING_KEY, None, {"seq": seq}, 0)


async def test_mirror_outbox_settled_lists_every_entry_in_order(
    store: Store, graph: GraphSandbox, journey: Journey
) -> None:
    """After the outbox settles the Audit Log holds seq 1..3, hashes as in the store."""
    chain = await evidence_audit.audit_entries(store)
    log, by_seq = audit_log(graph)
    assert [int(item.fields["Seq"]) for item in log.items.values()] == [1, 2, 3]
    assert [by_seq[e.seq].fields["Hash"] for e in chain] == [e.hash for e in chain]
    assert [by_seq[e.seq].fields["PrevHash"] for e in chain] == [e.prev_hash for e in chain]
    assert [by_seq[e.seq].fields["Action"] for e in chain] == [
        "requested",
        "submitted",
        "approved",
    ]
    body = json.loads(by_seq[2].fields["Details"])
    assert body["details"]["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert canonical_json(body) == canonical_json(chain[1].to_json())
    assert await outbox.counts(store) == {outbox.DONE: 3}


async def test_mirror_handler_run_twice_creates_no_duplicate(
    store: Store, graph: GraphSandbox, access: SharePointAccess
) -> None:
    """A job run again after its write (a crash before mark) finds the item, adds none."""
    await evidence.open_request(store, draft())
    mirror = AuditMirror(store, access.graph, SITE)
    await mirror(mirror_job(1))
    await mirror(mirror_job(1))
    log, by_seq = audit_log(graph)
    assert len(log.items) == 1 and list(by_seq) == [1]
    report = await verify_configured(access, store, files=False)
    assert report.ok and report.pending == ()


async def test_mirror_graph_unavailable_retries_then_writes_once(
    store: Store, graph: GraphSandbox, access: SharePointAccess
) -> None:
    """A 503 on the item write is a DeliveryError the outbox retries; the retry writes once."""
    await evidence.open_request(store, draft())
    mirror = AuditMirror(store, access.graph, SITE)
    graph.add_fault(Fault(status=503, method="POST", path="/items"))
    with pytest.raises(DeliveryError) as raised:
        await mirror(mirror_job(1))
    assert raised.value.outcome in (Outcome.RETRY, Outcome.RATE_LIMITED)
    assert (await verify_configured(access, store, files=False)).pending == (1,)
    await mirror(mirror_job(1))
    assert list(audit_log(graph)[1]) == [1]


async def test_mirror_without_sharepoint_jobs_wait_pending(store: Store) -> None:
    """Without WARDEN_SHAREPOINT_SITE the jobs stay pending, no attempt counted, none dead."""
    await evidence.open_request(store, draft())
    settings = OutboxSettings(poll_seconds=0.05)
    worker = OutboxWorker(store, {AUDIT_MIRROR_JOB: wait_for_sharepoint}, settings)

    async def deferred() -> bool:
        [job] = await outbox.list_jobs(store)
        return job.next_attempt_at.timestamp() > time.time() + 600

    await worker.start()
    try:
        await worker.wait_until(deferred)
    finally:
        await worker.stop()
    [job] = await outbox.list_jobs(store)
    assert (job.status, job.attempts) == (outbox.PENDING, 0)


async def test_verify_clean_site_passes_with_files(
    store: Store, access: SharePointAccess, journey: Journey
) -> None:
    """On the untouched site every entry, column and file matches, and nothing is pending."""
    report = await verify_configured(access, store)
    assert report.ok, report.finding
    assert (report.entries, report.files, report.pending) == (3, 1, ())


def _change_column(graph: GraphSandbox, journey: Journey) -> None:
    """Change the Actor column of seq 2."""
    audit_log(graph)[1][2].fields["Actor"] = "mallory@contoso.com"


def _delete_item(graph: GraphSandbox, journey: Journey) -> None:
    """Delete the list item of seq 2."""
    log, by_seq = audit_log(graph)
    del log.items[by_seq[2].id]


def _rewrite_body(graph: GraphSandbox, journey: Journey) -> None:
    """Edit seq 2's body and recompute its hash, columns made to agree."""
    item = audit_log(graph)[1][2]
    body = json.loads(item.fields["Details"])
    body["actor"] = "mallory@contoso.com"
    body["hash"] = entry_hash(body["prevHash"], body)
    item.fields |= {
        "Details": canonical_json(body).decode(),
        "Actor": body["actor"],
        "Hash": body["hash"],
    }


def _flip_file_byte(graph: GraphSandbox, journey: Journey) -> None:
    """Change one byte of the evidence file in the sandbox's drive."""
    assert graph.files is not None
    path = graph.files.path(journey.drive_id, journey.item_id)
    data = bytearray(path.read_bytes())
    data[1000] ^= 0x01
    path.write_bytes(bytes(data))


def _remove_file(graph: GraphSandbox, journey: Journey) -> None:
    """Remove the evidence file's bytes from the sandbox's drive."""
    assert graph.files is not None
    graph.files.path(journey.drive_id, journey.item_id).unlink()


@pytest.mark.parametrize(
    ("tamper", "kind", "seq"),
    [
        (_change_column, COLUMN_CHANGED, 2),
        (_delete_item, "removed", 3),
        (_rewrite_body, "relinked", 3),
        (_flip_file_byte, FILE_CHANGED, 2),
        (_remove_file, FILE_MISSING, 2),
    ],
    ids=["column", "deleted-item", "rehashed-body", "file-byte", "file-removed"],
)
async def test_verify_tampered_names_first_bad_entry(
    store: Store,
    graph: GraphSandbox,
    access: SharePointAccess,
    journey: Journey,
    tamper: Callable[[GraphSandbox, Journey], None],
    kind: str,
    seq: int,
) -> None:
    """Each kind of tampering is found and named at the first entry it breaks."""
    tamper(graph, journey)
    report: VerifyReport = await verify_configured(access)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.seq) == (kind, seq), report.finding
    assert f"seq {seq}" in report.finding.reason


async def test_verify_store_pending_is_not_tampering_truncation_is(
    store: Store, graph: GraphSandbox, access: SharePointAccess, journey: Journey
) -> None:
    """An entry not mirrored yet is pending; a mirrored last entry deleted is truncation."""
    await evidence.open_request(store, draft("ISO27001-A.5.1"))
    report = await verify_configured(access, store, files=False)
    assert report.ok and report.pending == (4,)
    log, by_seq = audit_log(graph)
    del log.items[by_seq[3].id]
    report = await verify_configured(access, store, files=False)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.seq) == ("truncated", 3)


async def test_export_zip_manifest_hashes_match_files(
    store: Store, access: SharePointAccess, journey: Journey, tmp_path: Path
) -> None:
    """The zip holds the request's entries, its file, and a manifest whose hashes match."""
    await evidence.open_request(store, draft("ISO27001-A.5.1"))  # another requirement
    out = tmp_path / "audit.zip"
    library = await access.library()
    summary = await export(
        access.graph, SITE, requirement=REQUIREMENT, period=PERIOD, out=out, library=library
    )
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        lines = archive.read("entries.jsonl").splitlines()
        [record] = manifest["files"]
        content = archive.read(record["path"])
    assert record["path"] == f"files/{journey.request_id}/1-{FILE_NAME}"
    assert content == CONTENT
    assert record["sha256"] == record["recordedSha256"] == hashlib.sha256(content).hexdigest()
    assert record["size"] == len(CONTENT)
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3]
    assert manifest["entries"]["lastHash"] == json.loads(lines[-1])["hash"]
    assert manifest["chainVerified"] and summary.entries == 3
    assert not (tmp_path / "audit.zip.partial").exists()


async def test_audit_commands_verify_then_export_then_find_tampering(
    arm: ArmSandbox,
    graph: GraphSandbox,
    journey: Journey,
    app_identity: tuple[str, str],
    tmp_path: Path,
) -> None:
    """`audit verify` exits 0 on the clean site, `audit export` writes the zip, and after
    one byte of the file changes `audit verify` exits 1 naming the file."""
    client_id, secret = app_identity
    env = {
        **os.environ,
        "WARDEN_VAR_DIR": str(tmp_path / "var"),
        "WARDEN_GRAPH_ENDPOINT": graph.graph_url,
        "WARDEN_SHAREPOINT_SITE": str(SITE),
        "WARDEN_ARM_CA_BUNDLE": str(arm.ca_path),
        "AZURE_TENANT_ID": arm.tenant_id,
        "AZURE_CLIENT_ID": client_id,
        "AZURE_CLIENT_SECRET": secret,
        "AZURE_AUTHORITY_HOST": arm.authority,
        "COLUMNS": "200",
    }

    async def app(*args: str) -> tuple[int | None, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            APP,
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        return process.returncode, out.decode()

    code, out = await app("audit", "verify")
    assert code == 0 and "Audit trail verified" in out, out
    zipped = tmp_path / "out.zip"
    code, out = await app(
        "audit", "export", "--requirement", REQUIREMENT, "--period", PERIOD, str(zipped)
    )
    assert code == 0 and zipped.exists(), out
    _flip_file_byte(graph, journey)
    code, out = await app("audit", "verify")
    assert code == 1 and FILE_CHANGED in out and FILE_NAME in out, out
