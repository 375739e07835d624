"""``audit verify``: re-read the SharePoint Audit Log and the evidence files, name the first
entry or file that does not match.

``verify_site`` reads every item of the *Audit Log* list (paged), rebuilds each entry from
the canonical JSON its ``Details`` column holds (``graph.audit_mirror``), and walks the
chain in ``seq`` order. At each entry, in this order, it stops at the first problem:

* the chain (``core.audit_chain.verify``): malformed body, content not matching its hash,
  a gap in ``seq`` (an entry removed), a ``prevHash`` that is not the previous hash;
* the item's columns disagree with its body (someone edited a column);
* with the store given: the entry's hash differs from the one Warden's store holds;
* a submitted file (``itemId`` + ``sha256``): the file is missing from the *Evidence*
  library, its bytes hash differently (downloaded and hashed as they stream), or the
  library item's Sha256 column says otherwise.

With the store, entries Warden has written but not mirrored yet are reported as *pending
mirror* (not tampering), and an entry the store says was mirrored but the list no longer
holds at its end is reported as truncation.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.drives.item.items.item.list_item.list_item_request_builder import (
    ListItemRequestBuilder,
)
from msgraph.graph_service_client import GraphServiceClient
from rich.console import Console
from rich.markup import escape
from sqlalchemy import select

from connectors.ssrf import SsrfError, SsrfPolicy, stream
from core.audit_chain import AuditAction, AuditEntry, Tampering, verify
from core.breaker import Breakers
from core.errors import DeliveryError, Outcome, SettingsError
from core.settings import Settings
from core.store.schema_evidence import audit_entries as audit_table
from core.store.store import Store
from graph.audit_mirror import audit_log_ref, column_mismatch, item_body, item_seq
from graph.client import graph_client, graph_http
from graph.evidence_files import (
    EvidenceFiler,
    EvidenceUploadFailed,
    GuardedFetch,
    UploadLimits,
    sha256_of,
)
from graph.sharepoint import ItemFields, ListRef, SitePath, call, read_items, site_by_path

EVIDENCE_LIBRARY = "Evidence"
"""The document library evidence files are filed in (``graph.provision.SCHEMA``)."""

DOWNLOAD_TIMEOUT = 600.0
"""Seconds one evidence file download may take, redirects included."""

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
"""Graph endpoints on this machine (the sandbox), whose downloads are local too."""

COLUMN_CHANGED = "column changed"
STORE_DIFFERS = "differs from Warden's store"
FILE_MISSING = "file missing"
FILE_CHANGED = "file hash mismatch"
FILE_COLUMN = "file Sha256 column mismatch"


@dataclass(frozen=True)
class Finding:
    """The first thing that does not match: its kind, the entry (seq, list item), and why."""

    kind: str
    seq: int | None
    item_id: str | None
    reason: str


@dataclass
class VerifyReport:
    """What ``verify_site`` read and the first finding, if any."""

    site: str
    entries: int = 0
    files: int = 0
    head: str | None = None
    finding: Finding | None = None
    pending: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every entry and file matched."""
        return self.finding is None


@dataclass(frozen=True)
class SubmittedFile:
    """An evidence file a ``submitted`` entry records."""

    request_id: str
    submission: int
    item_id: str
    name: str
    sha256: str


def submitted_file(entry: AuditEntry) -> SubmittedFile | None:
    """The file ``entry`` records, or None: a ``submitted`` entry of a file handed in as such,
    or a ``filed`` entry (Warden filed a link, an attestation or a file attached in chat)."""
    details = entry.details
    handed_in = entry.action is AuditAction.SUBMITTED and details.get("kind") == "file"
    if not handed_in and entry.action is not AuditAction.FILED:
        return None
    item_id, sha256 = details.get("itemId"), details.get("sha256")
    if not isinstance(item_id, str) or not isinstance(sha256, str):
        return None
    name, submission = details.get("fileName"), details.get("submission")
    return SubmittedFile(
        entry.request_id,
        submission if isinstance(submission, int) else 0,
        item_id,
        name if isinstance(name, str) else item_id,
        sha256,
    )


class EvidenceLibrary:
    """Reads files of the *Evidence* library: their bytes and their Sha256 column."""

    def __init__(self, graph: GraphServiceClient, filer: EvidenceFiler, drive_id: str) -> None:
        """Read drive ``drive_id`` through ``filer`` (downloads) and ``graph`` (columns)."""
        self.graph = graph
        self.filer = filer
        self.drive_id = drive_id

    async def sha256_column(self, item_id: str) -> str | None:
        """The library item's Sha256 column (None when empty); DeliveryError 404 if gone."""
        query = ListItemRequestBuilder.ListItemRequestBuilderGetQueryParameters(expand=["fields"])
        config = RequestConfiguration(query_parameters=query)
        item = self.graph.drives.by_drive_id(self.drive_id).items.by_drive_item_id(item_id)
        found = await call("evidence item", item.list_item.get(config))
        fields = found.fields.additional_data if found and found.fields else {}
        value = fields.get("Sha256")
        return value if isinstance(value, str) and value else None

    async def digest(self, item_id: str) -> str:
        """The SHA-256 (hex) of a library file's bytes, downloaded and hashed as they stream."""
        async with self.filer.download(item_id) as body:
            _, digest = await sha256_of(body)
        return digest

    async def check(self, file: SubmittedFile) -> str | None:
        """Why ``file`` does not match what the library holds, as ``kind: reason``; or None."""
        try:
            column = await self.sha256_column(file.item_id)
            digest = await self.digest(file.item_id)
        except DeliveryError as exc:
            if exc.status != 404:
                raise
            return f"{FILE_MISSING}: {file.name} (item {file.item_id}) is not in the library"
        except (EvidenceUploadFailed, SsrfError) as exc:
            return f"{FILE_MISSING}: {file.name} (item {file.item_id}) cannot be read: {exc}"
        if digest != file.sha256:
            return f"{FILE_CHANGED}: {file.name} hashes to {digest}, the entry says {file.sha256}"
        if column is not None and column != file.sha256:
            return f"{FILE_COLUMN}: {file.name}'s Sha256 column says {column}"
        return None


async def open_library(
    graph: GraphServiceClient, site_id: str, http: httpx.AsyncClient, fetch: GuardedFetch
) -> EvidenceLibrary:
    """The *Evidence* library of a site; DeliveryError (GONE) when it is not there."""
    drives = await call("drives", graph.sites.by_site_id(site_id).drives.get())
    for drive in (drives.value or []) if drives else []:
        if (drive.name or "").casefold() == EVIDENCE_LIBRARY.casefold() and drive.id:
            filer = EvidenceFiler(graph, http, drive.id, fetch=fetch)
            return EvidenceLibrary(graph, filer, drive.id)
    raise DeliveryError(f"the site has no {EVIDENCE_LIBRARY} library", outcome=Outcome.GONE)


async def read_log(graph: GraphServiceClient, ref: ListRef) -> list[ItemFields]:
    """Every Audit Log item, in ``seq`` order (items without a readable seq last)."""
    items = [item async for item in read_items(graph, ref)]
    return sorted(items, key=lambda item: (item_seq(item) is None, item_seq(item) or 0))


async def verify_site(
    graph: GraphServiceClient,
    site: SitePath,
    store: Store | None = None,
    *,
    library: EvidenceLibrary | None = None,
) -> VerifyReport:
    """Verify the Audit Log of ``site`` (and the files, when ``library`` is given)."""
    ref = await audit_log_ref(graph, site)
    items = await read_log(graph, ref)
    bodies = [item_body(item) or {} for item in items]
    chain = verify(bodies)
    stored = await _store_chain(store) if store is not None else {}
    report = VerifyReport(str(site), entries=len(items))
    listed = {item_seq(item) for item in items}
    report.pending = tuple(
        seq for seq, (_, done) in stored.items() if not done and seq not in listed
    )
    for position, item in enumerate(items):
        if chain.position == position and chain.problem is not None:
            report.finding = Finding(chain.problem.value, chain.seq, item.id, chain.reason)
            return report
        entry = AuditEntry.model_validate(bodies[position])
        report.head = entry.hash
        report.finding = await _entry_finding(entry, item, stored, library, report)
        if report.finding is not None:
            return report
    if chain.problem is not None:  # truncated: only with a head, after the last entry
        report.finding = Finding(chain.problem.value, None, None, chain.reason)
        return report
    last = max((item_seq(item) or 0 for item in items), default=0)
    report.finding = _tail_finding(stored, last)
    return report


async def _entry_finding(
    entry: AuditEntry,
    item: ItemFields,
    stored: dict[int, tuple[str, bool]],
    library: EvidenceLibrary | None,
    report: VerifyReport,
) -> Finding | None:
    """The first problem of one chain-valid entry: columns, store, file."""
    stored_hash = stored[entry.seq][0] if entry.seq in stored else None
    found = item_finding(entry, item, stored_hash)
    if found is not None:
        return found
    file = submitted_file(entry)
    if file is None or library is None:
        return None
    report.files += 1
    problem = await library.check(file)
    if problem is None:
        return None
    kind, _, reason = problem.partition(": ")
    where = f"seq {entry.seq} (list item {item.id})"
    return Finding(kind, entry.seq, item.id, f"{where}: {reason}")


def item_finding(entry: AuditEntry, item: ItemFields, stored_hash: str | None) -> Finding | None:
    """What is wrong with the Audit Log ``item`` whose (hash-valid) body is ``entry``: a
    column that disagrees with the body, or a hash other than ``stored_hash`` (Warden's)."""
    where = f"seq {entry.seq} (list item {item.id})"
    why = column_mismatch(entry, item.fields)
    if why is not None:
        return Finding(COLUMN_CHANGED, entry.seq, item.id, f"{where}: {why}")
    if stored_hash is not None and stored_hash != entry.hash:
        reason = f"{where}: its hash is not the one Warden's store recorded"
        return Finding(STORE_DIFFERS, entry.seq, item.id, reason)
    return None


def _tail_finding(stored: dict[int, tuple[str, bool]], last: int) -> Finding | None:
    """Entries the store says were mirrored but the list lacks after its last one."""
    gone = [seq for seq, (_, mirrored) in stored.items() if seq > last and mirrored]
    if not gone:
        return None
    reason = (
        f"seq {gone[0]} was mirrored (Warden's store has its list item) "
        f"but the Audit Log ends at seq {last}"
    )
    return Finding(Tampering.TRUNCATED.value, gone[0], None, reason)


async def _store_chain(store: Store) -> dict[int, tuple[str, bool]]:
    """The store's chain: seq → (hash, mirrored), without decrypting the bodies."""
    stmt = select(audit_table.c.seq, audit_table.c.hash, audit_table.c.item_id)
    async with store.reading() as conn:
        rows = (await conn.execute(stmt.order_by(audit_table.c.seq))).all()
    return {row.seq: (row.hash, row.item_id is not None) for row in rows}


@dataclass(frozen=True)
class SharePointAccess:
    """What the audit commands need of SharePoint: Graph, the site and file downloads."""

    graph: GraphServiceClient
    site: SitePath
    http: httpx.AsyncClient
    fetch: GuardedFetch

    async def library(self) -> EvidenceLibrary:
        """The site's *Evidence* library."""
        found = await site_by_path(self.graph, self.site)
        return await open_library(self.graph, found.id or "", self.http, self.fetch)


def download_fetch(
    site: SitePath, graph_endpoint: str, verify: ssl.SSLContext | bool = True
) -> GuardedFetch:
    """The SSRF-guarded fetch of evidence downloads: SharePoint hosts over https:443, or
    anything on this machine when Graph itself is local (the sandbox)."""
    local = httpx.URL(graph_endpoint).host in LOCAL_HOSTS
    domain = site.hostname.partition(".")[2]
    policy = SsrfPolicy(
        allowed_hosts=() if local else (site.hostname, f"*.{domain}"),
        allow_private=local,
        allowed_ports=None if local else (443,),
        max_bytes=UploadLimits().max_bytes,
        timeout=DOWNLOAD_TIMEOUT,
    )
    context = verify if isinstance(verify, ssl.SSLContext) else None
    return functools.partial(stream, policy=policy, ssl_context=context)


@contextlib.asynccontextmanager
async def sharepoint_access(
    settings: Settings,
    credential: AsyncTokenCredential,
    *,
    breakers: Breakers | None = None,
    verify: ssl.SSLContext | bool = True,
) -> AsyncIterator[SharePointAccess]:
    """Graph at ``WARDEN_GRAPH_ENDPOINT`` for ``WARDEN_SHAREPOINT_SITE`` (as ``provision``)."""
    if not settings.sharepoint_site:
        raise SettingsError("WARDEN_SHAREPOINT_SITE is not set (host:/sites/Name)")
    site = SitePath.parse(settings.sharepoint_site)
    async with graph_http(breakers or Breakers(), verify) as http:
        graph = graph_client(credential, http, base_url=settings.graph_endpoint)
        fetch = download_fetch(site, settings.graph_endpoint, verify)
        yield SharePointAccess(graph, site, http, fetch)


async def verify_configured(
    access: SharePointAccess, store: Store | None = None, *, files: bool = True
) -> VerifyReport:
    """``verify_site`` on the configured site, with its Evidence library unless ``files``
    is False."""
    library = await access.library() if files else None
    return await verify_site(access.graph, access.site, store, library=library)


def print_verify_report(report: VerifyReport, console: Console) -> None:
    """Show a verification: green when clean, else the first finding in red."""
    checked = f"{report.entries} audit entries and {report.files} evidence files"
    if report.ok:
        console.print(f"[green]Audit trail verified:[/] {checked} on {escape(report.site)} match.")
    else:
        assert report.finding is not None
        console.print(f"[red]Audit trail does not verify[/] ({checked} read)")
        console.print(f"[red]{escape(report.finding.kind)}:[/] {escape(report.finding.reason)}")
    if report.pending:
        seqs = ", ".join(str(seq) for seq in report.pending)
        console.print(
            f"[yellow]Pending mirror[/] (written by Warden, not yet in SharePoint): {seqs}"
        )
