"""Evidence kept in SharePoint: the ``evidence.file`` and ``evidence.list`` outbox handlers.

``EvidenceFiling`` files a submission's link (fetched through the SSRF guard) or attestation
(as ``v<n>-attestation.txt``) in the *Evidence* library at
``<requirement>/<period>/<request>/v<n>-<file name>``, streamed and hashed by
``EvidenceFiler``, sets the library columns, and records the file's SHA-256, size, item id
and web URL on the submission, with the card redraws, in one transaction. A later version
gets its own ``v<n>`` name, so earlier ones are kept. A fetch retrying cannot fix (404,
refused host, executable, too large) fails the job with its reason; Graph down or throttled
is a ``DeliveryError`` (RETRY) and the outbox tries again.

``EvidenceListSync`` upserts the request's *Evidence Requests* item: found by RequestId,
created once, then updated under ``If-Match`` (412: re-read and re-applied).

No audit action "filed" exists in ``core.audit_chain``, so filing appends no audit entry.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from msgraph.graph_service_client import GraphServiceClient

from connectors.ssrf import SsrfError, SsrfPolicy, stream
from connectors.ssrf_rules import link_hosts
from core.catalog import EvidenceKind
from core.errors import DeliveryError, Outcome
from core.evidence import RequestStatus, Submission, approvers
from core.store import evidence as evidence_store
from core.store import evidence_chat_files as chat_store
from core.store import evidence_filing
from core.store.evidence import RequestRecord
from core.store.evidence_audit import FollowUp
from core.store.evidence_cards import redraw_jobs
from core.store.outbox import Job
from core.store.store import Store
from graph import evidence_chat_files as chat_files
from graph.audit_verify import DOWNLOAD_TIMEOUT, EVIDENCE_LIBRARY, EvidenceLibrary, open_library
from graph.evidence_chat_files import ChatFetch
from graph.evidence_files import (
    EvidencePath,
    EvidenceRefused,
    EvidenceSource,
    EvidenceUploadFailed,
    GuardedFetch,
    UploadLimits,
    iter_source,
    url_source,
)
from graph.sharepoint import (
    ListRef,
    SitePath,
    call,
    create_item,
    list_by_name,
    read_items,
    site_by_path,
    update_item_fields,
)

log = logging.getLogger(__name__)

REQUESTS_LIST = "Evidence Requests"
"""The display name of the list of requests (``graph.provision.SCHEMA``)."""

STATUS_CHOICES = {
    RequestStatus.OPEN: "Open",
    RequestStatus.SUBMITTED: "Submitted",
    RequestStatus.CHANGES_REQUESTED: "ChangesRequested",
    RequestStatus.APPROVED: "Approved",
    RequestStatus.REJECTED: "Rejected",
    RequestStatus.RESOLVED_BY_POLICY: "Closed",
    RequestStatus.CANCELLED: "Closed",
}
"""The list's Status choice of each request status."""

TYPE_CHOICES = {
    EvidenceKind.FILE: "File",
    EvidenceKind.LINK: "Link",
    EvidenceKind.ATTESTATION: "Attestation",
}
_BAD_NAME = re.compile(r'["*:<>?/\\|#%\x00-\x1f]+')


def link_fetch(setting: str) -> GuardedFetch:
    """The SSRF-guarded fetch of evidence links (``WARDEN_EVIDENCE_LINK_HOSTS``)."""
    policy = SsrfPolicy(
        allowed_hosts=link_hosts(setting),
        max_bytes=UploadLimits().max_bytes,
        timeout=DOWNLOAD_TIMEOUT,
    )
    return functools.partial(stream, policy=policy)


def link_file_name(url: str) -> str:
    """A safe file name for a link: its last path segment, else ``link``."""
    segment = unquote(urlsplit(url).path.rstrip("/").rpartition("/")[2])
    name = _BAD_NAME.sub("-", segment).strip(" .")[:120]
    return name or "link"


def request_fields(record: RequestRecord) -> dict[str, Any]:
    """The *Evidence Requests* item fields of a request."""
    request = record.request
    return {
        "Title": f"{request.requirement_id} {request.id}",
        "RequestId": request.id,
        "RequirementId": request.requirement_id,
        "Status": STATUS_CHOICES[request.status],
        "Owner": request.owner,
        "DueUtc": f"{request.due.isoformat()}T00:00:00Z",
        "Approvals": len(approvers(request, record.decisions)),
        "ApprovalsNeeded": request.approvals_needed,
        "Period": request.period,
    }


async def _site_id(graph: GraphServiceClient, site: SitePath) -> str:
    """The Graph id of ``site``."""
    return (await site_by_path(graph, site)).id or ""


class EvidenceFiling:
    """The ``evidence.file`` handler: one submission → one file in the *Evidence* library."""

    def __init__(
        self,
        store: Store,
        graph: GraphServiceClient,
        site: SitePath,
        http: httpx.AsyncClient,
        *,
        link_fetch: GuardedFetch,
        download_fetch: GuardedFetch,
        file_fetch: ChatFetch | None = None,
    ) -> None:
        """File through ``graph``/``http``; fetch links with ``link_fetch`` and files attached
        in chat with ``file_fetch`` (``chat_file_fetch``; by default ``download_fetch``, which
        allows the SharePoint domain of the site), both through the SSRF guard."""
        self._file_fetch: ChatFetch = file_fetch or download_fetch
        self._store = store
        self._graph = graph
        self._site = site
        self._http = http
        self._link_fetch = link_fetch
        self._download_fetch = download_fetch
        self._library: EvidenceLibrary | None = None
        self._library_ref: ListRef | None = None

    async def __call__(self, job: Job) -> None:
        """File the request's submissions not filed yet, oldest first."""
        request_id = str(job.payload["request"])
        record = await evidence_store.record(self._store, request_id)
        if record is None:
            raise DeliveryError(f"no evidence request {request_id}", outcome=Outcome.FAIL)
        conversation = str(job.payload.get("conversation_id") or "")
        for submission in record.submissions:
            if submission.item_id:
                continue
            if submission.awaiting_file:
                await self._file_from_chat(record, submission, conversation)
            elif submission.kind is not EvidenceKind.FILE:
                await self._file(record, submission, conversation, self._source(submission))

    async def _file_from_chat(
        self, record: RequestRecord, submission: Submission, conversation: str
    ) -> None:
        """File a submission made from a file attached in chat, from its download URL.

        An expired URL or a refused file sends the request back to its owner, saying why
        (the cards are redrawn); a download or Graph failure is retried."""
        held = await chat_store.for_submission(self._store, record.request.id, submission.version)
        if held is None or held.state is not chat_store.ChatFileState.FILING:
            return  # nothing left to fetch: filed, or already handed back
        try:
            async with chat_files.download(self._file_fetch, held.download_url) as source:
                name = link_file_name("/" + held.file_name)
                await self._file(record, submission, conversation, (name, source), chat=True)
        except (SsrfError, EvidenceRefused, httpx.HTTPError) as exc:
            outcome, words = chat_files.classify(exc)
            if outcome is chat_files.Outcome.RETRY:
                raise DeliveryError(f"chat file download: {exc}", outcome=Outcome.RETRY) from None
            state = (
                chat_store.ChatFileState.EXPIRED
                if outcome is chat_files.Outcome.EXPIRED
                else chat_store.ChatFileState.REFUSED
            )
            jobs = [
                *redraws(record.request.id, conversation),
                evidence_store.list_job(record.request.id),
            ]
            await chat_store.hand_back(self._store, held, state, words, jobs=jobs)
            log.info(
                "evidence %s v%d handed back: %s", record.request.id, submission.version, state
            )
            return
        await chat_store.mark(self._store, held.id, chat_store.ChatFileState.FILED)

    async def _file(
        self,
        record: RequestRecord,
        submission: Submission,
        conversation: str,
        named: tuple[str, EvidenceSource],
        *,
        chat: bool = False,
    ) -> None:
        """File one submission (``named``: its file name and bytes) and record where it went.

        ``chat``: a refusal propagates for the caller to tell the owner."""
        request_id, version = record.request.id, submission.version
        if self._library is None:
            site_id = await _site_id(self._graph, self._site)
            self._library = await open_library(
                self._graph, site_id, self._http, self._download_fetch
            )
        name, source = named
        request = record.request
        path = EvidencePath(
            request.requirement_id, request.period, request.id, f"v{version}-{name}"
        )
        try:
            filed = await self._library.filer.file(source, path)
        except (SsrfError, EvidenceRefused) as exc:
            if chat:
                raise
            await self._link_failed(record, submission, conversation, exc)
            return
        except EvidenceUploadFailed as exc:
            raise DeliveryError(str(exc), outcome=Outcome.RETRY) from None
        await self._set_columns(filed.item_id, filed.sha256, request.requirement_id, submission)
        values = {
            "sha256": filed.sha256,
            "file_size": filed.size,
            "item_id": filed.item_id,
            "web_url": filed.web_url,
            "file_name": path.filename,
        }
        jobs = redraws(request_id, conversation)
        await evidence_filing.record_filed(self._store, request_id, version, values, jobs=jobs)
        log.info("evidence %s v%d filed in SharePoint", request_id, version)

    async def _link_failed(
        self,
        record: RequestRecord,
        submission: Submission,
        conversation: str,
        exc: SsrfError | EvidenceRefused,
    ) -> None:
        """A link that cannot be filed: retried when the failure may pass (5xx, slow, 429);
        otherwise the request goes back to its owner saying why, so they give another link
        (nothing is dropped: the link stays on the request and in the audit log)."""
        outcome, _words = chat_files.classify(exc)
        if outcome is chat_files.Outcome.RETRY:
            raise DeliveryError(f"evidence link: {exc}", outcome=Outcome.RETRY) from None
        reason = (
            f"Warden could not file the link you gave: {exc.user_message}. "
            "Give a link Warden can open without signing in, or another kind of evidence."
        )
        request_id = record.request.id
        jobs = [*redraws(request_id, conversation), evidence_store.list_job(request_id)]
        sent = await evidence_filing.send_back(
            self._store, request_id, submission.version, reason, jobs=jobs
        )
        log.info(
            "evidence %s v%d link not filed (%s)%s",
            request_id,
            submission.version,
            type(exc).__name__,
            ", sent back to its owner" if sent else "",
        )

    def _source(self, submission: Submission) -> tuple[str, EvidenceSource]:
        """The file name and bytes to file for a link or an attestation."""
        if submission.kind is EvidenceKind.LINK and submission.url:
            return link_file_name(submission.url), url_source(self._link_fetch, submission.url)
        data = (submission.text or "").encode("utf-8")

        async def chunks() -> AsyncIterator[bytes]:
            """The attestation text, as the card hashed it."""
            yield data

        return "attestation.txt", iter_source(chunks, len(data))

    async def _set_columns(
        self, item_id: str, sha256: str, requirement: str, submission: Submission
    ) -> None:
        """Set the library columns of the filed item."""
        assert self._library is not None
        fields = {
            "RequirementId": requirement,
            "RequestId": submission.request_id,
            "Sha256": sha256,
            "SubmittedBy": submission.submitted_by,
            "EvidenceType": TYPE_CHOICES[submission.kind],
        }
        drive = self._graph.drives.by_drive_id(self._library.drive_id)
        found = await call("evidence item", drive.items.by_drive_item_id(item_id).list_item.get())
        if self._library_ref is None:
            site_id = await _site_id(self._graph, self._site)
            listed = await list_by_name(self._graph, site_id, EVIDENCE_LIBRARY)
            self._library_ref = ListRef(site_id, (listed.id if listed else None) or "")
        list_item = str(found.id if found else "")
        await update_item_fields(self._graph, self._library_ref, list_item, lambda _: fields)


def redraws(request_id: str, conversation_id: str) -> list[FollowUp]:
    """The jobs redrawing both cards of a request in a conversation once its evidence was
    filed (or handed back): drawn even at the version already posted."""
    return redraw_jobs(request_id, conversation_id, filed=True)


class EvidenceListSync:
    """The ``evidence.list`` handler: the request's *Evidence Requests* item, upserted."""

    def __init__(self, store: Store, graph: GraphServiceClient, site: SitePath) -> None:
        """Keep ``store``'s requests in the list of ``site``."""
        self._store = store
        self._graph = graph
        self._site = site
        self._ref: ListRef | None = None

    async def __call__(self, job: Job) -> None:
        """Create the request's item, or bring its changed fields up to date (If-Match)."""
        request_id = str(job.payload["request"])
        record = await evidence_store.record(self._store, request_id)
        if record is None:
            raise DeliveryError(
                f"no evidence request {request_id} in the store", outcome=Outcome.FAIL
            )
        ref = self._ref = self._ref or await self._list_ref()
        wanted = request_fields(record)
        quoted = request_id.replace("'", "''")
        async for item in read_items(
            self._graph, ref, page_size=2, filter_=f"fields/RequestId eq '{quoted}'"
        ):
            await update_item_fields(self._graph, ref, item.id, lambda now: _changed(now, wanted))
            return
        await create_item(self._graph, ref, wanted)

    async def _list_ref(self) -> ListRef:
        """The *Evidence Requests* list; RETRY while it is not provisioned."""
        site_id = await _site_id(self._graph, self._site)
        listed = await list_by_name(self._graph, site_id, REQUESTS_LIST)
        if listed is None or not listed.id:
            raise DeliveryError(
                f"no {REQUESTS_LIST} list: run `python app.py provision`", outcome=Outcome.RETRY
            )
        return ListRef(site_id, listed.id)


def _changed(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``wanted`` the item does not hold yet (numbers compared as numbers)."""
    changed: dict[str, Any] = {}
    for name, value in wanted.items():
        found = current.get(name)
        if isinstance(value, int) and isinstance(found, int | float):
            same = float(found) == float(value)
        elif name == "DueUtc":
            same = str(found or "")[:10] == str(value)[:10]
        else:
            same = found == value
        if not same:
            changed[name] = value
    return changed
