# ruff: noqa: F811  (fixtures imported from test_audit_trail are parameters here)
"""Evidence files attached in a personal chat with Warden, filed in SharePoint.

The real app (botbuilder, store, outbox) answers message activities carrying Teams'
``file.download.info`` attachments; its ``evidence.file`` job downloads the file from a local
HTTPS server standing for SharePoint's pre-authenticated download URL (a certificate of the
sandbox CA), through the SSRF guard, and streams it into the Graph sandbox's *Evidence*
library with the real msgraph-sdk and azure-identity.
"""

from __future__ import annotations

import hashlib
import random
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from app import STORE, WORKER
from bot.evidence import card_job, quarter
from cards.evidence import FILE_ATTACH_VERB
from core.catalog import load_catalog
from core.evidence import RequestSource, RequestStatus, draft_for
from core.store import evidence as evidence_store
from core.store import evidence_audit, outbox
from core.store import evidence_chat_files as chat_store
from core.store.evidence import EVIDENCE_FILE_JOB
from core.store.evidence_cards import EVIDENCE_CARD_JOB, CardRole
from core.store.store import Store
from sandbox.arm import ArmSandbox
from sandbox.graph import GraphSandbox
from tests.integration.conftest import Warden, WardenFactory
from tests.integration.test_audit_trail import (  # noqa: F401  (fixtures)
    HOST,
    ROLES,
    SITE,
    access,
    arm,
    graph,
)
from tests.support import (
    channel_id,
    file_attachment,
    file_message_activity,
    personal_invoke_activity,
)

CATALOG = """\
requirements:
  - id: ISO-A.8.13
    title: Backups are tested
    guidance: A restore test report.
    evidence: [file, attestation]
    owner: owner@contoso.com
    reviewers: ["6f4c1b3e-2a8d-4b9e-9c1a-0d2e3f4a5b6c"]
    due_days: 14
  - id: ISO-A.5.15
    title: Access reviews of privileged roles
    guidance: The latest quarterly access review.
    evidence: [file, link]
    owner: owner@contoso.com
    reviewers: ["6f4c1b3e-2a8d-4b9e-9c1a-0d2e3f4a5b6c"]
    due_days: 30
  - id: ISO-A.9.1
    title: Access control policy
    guidance: A signed statement.
    evidence: [attestation]
    owner: owner@contoso.com
    reviewers: ["6f4c1b3e-2a8d-4b9e-9c1a-0d2e3f4a5b6c"]
    due_days: 30
  - id: ISO-A.12.3
    title: Backup team restore drill
    guidance: The drill's report.
    evidence: [file]
    owner: "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
    reviewers: ["6f4c1b3e-2a8d-4b9e-9c1a-0d2e3f4a5b6c"]
    due_days: 30
"""
BACKUP_TEAM = "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"

OWNER = {
    "id": "29:olivia",
    "name": "Olivia Owner",
    "aadObjectId": "0a0a0a0a-0000-4000-8000-00000000000a",
}
CHAT = "a:1olivia-personal-chat"
CHANNEL = channel_id("compliance")
REPORT = b"%PDF-1.7\nrestore test of 2026-10-02: 14 of 14 backups restored\n"
PIECE = 64 * 1024
MIB = 1024 * 1024


def generated(size: int, seed: int = 11) -> Callable[[], AsyncIterator[bytes]]:
    """A factory of reproducible pseudo-random streams of ``size`` bytes (64 KiB pieces)."""

    async def chunks() -> AsyncIterator[bytes]:
        rng = random.Random(seed)
        for start in range(0, size, PIECE):
            yield rng.randbytes(min(PIECE, size - start))

    return chunks


@dataclass
class Served:
    """One file the download server offers, the failures it answers first, what it sent."""

    content: Callable[[], AsyncIterator[bytes]]
    size: int
    failures: list[int] = field(default_factory=list)
    always: int | None = None
    requests: int = 0
    pieces: int = 0


@dataclass
class Downloads:
    """A local HTTPS server standing for SharePoint's pre-authenticated download URLs."""

    port: int = 0
    files: dict[str, Served] = field(default_factory=dict)

    def offer(self, served: Served) -> str:
        """Serve ``served`` at a fresh, unguessable URL; return it."""
        token = uuid.uuid4().hex
        self.files[token] = served
        return f"https://127.0.0.1:{self.port}/download.aspx?UniqueId={token}&tempauth=t"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer a download: a queued failure, the fixed failure, or the bytes streamed."""
        served = self.files.get(request.query.get("UniqueId", ""))
        if served is None:
            return web.Response(status=404)
        served.requests += 1
        if request.headers.get("Authorization"):
            return web.Response(status=400, text="pre-authenticated URL: no token expected")
        if served.always is not None:
            return web.Response(status=served.always)
        if served.failures:
            return web.Response(status=served.failures.pop(0))
        response = web.StreamResponse()
        response.content_length = served.size
        response.content_type = "application/octet-stream"
        await response.prepare(request)
        async for piece in served.content():
            served.pieces += 1
            await response.write(piece)
        await response.write_eof()
        return response


@pytest.fixture
async def downloads(arm: ArmSandbox) -> AsyncIterator[Downloads]:
    """The download server, over TLS with a certificate of the sandbox CA."""
    assert arm.tls is not None
    server = Downloads()
    app = web.Application()
    app.router.add_get("/download.aspx", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=arm.tls.server_context()).start()
    server.port = runner.addresses[0][1]
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture
def app_identity(arm: ArmSandbox) -> tuple[str, str]:
    """Warden's app registration: write sites, read users (no personal app installs, so
    owner cards stay in the channel they were asked in)."""
    app = arm.register_client("warden-chat-files", graph_roles=[*ROLES, "User.Read.All"])
    return app.client_id, app.secret


@pytest.fixture
async def warden(
    start_warden: WardenFactory,
    tmp_path: Path,
    arm: ArmSandbox,
    graph: GraphSandbox,
    access: object,
    app_identity: tuple[str, str],
) -> Warden:
    """Warden with the catalog, SharePoint (site provisioned) and the sandbox identity."""
    catalog = tmp_path / "requirements.yaml"
    catalog.write_text(CATALOG)
    client_id, secret = app_identity
    return await start_warden(
        requirements_file=catalog,
        graph_endpoint=graph.graph_url,
        sharepoint_site=str(SITE),
        arm_ca_bundle=arm.ca_path,
        azure_tenant_id=arm.tenant_id,
        azure_client_id=client_id,
        azure_client_secret=secret,
        azure_authority_host=arm.authority,
        evidence_file_hosts="127.0.0.1",
    )


class Owner:
    """Olivia, asked for evidence in the compliance channel, answering in her personal chat."""

    def __init__(self, warden: Warden, catalog_path: Path) -> None:
        self.warden = warden
        self.catalog = load_catalog(catalog_path)

    @property
    def store(self) -> Store:
        store: Store = self.warden.client.app[STORE]
        return store

    async def asked_for(self, requirement_id: str, owner: str = OWNER["aadObjectId"]) -> str:
        """A request for ``requirement_id`` is opened, its owner card posted in the channel."""
        requirement = self.catalog.get(requirement_id)
        assert requirement is not None
        today = datetime.now(UTC).date()
        draft = draft_for(
            requirement,
            source=RequestSource.CHAT,
            period=quarter(today),
            requested_by="adele@contoso.com",
            today=today,
            owner=owner,
        )
        job = card_job(draft.dedupe_key(), CardRole.OWNER, CHANNEL, by_key=True)
        request, _ = await evidence_store.open_request(self.store, draft, jobs=[job])
        await self.settled()
        return request.id

    async def attach(self, *files: dict[str, Any], channel: bool = False) -> list[dict[str, Any]]:
        """Olivia sends a message with ``files``; the cards Warden replied with."""
        where = CHANNEL if channel else CHAT
        activity = file_message_activity(
            self.warden.connector.url, where, list(files), user=OWNER, channel=channel
        )
        response = await self.warden.client.post("/api/messages", json=activity)
        assert response.status in (200, 201), await response.text()
        replies = [
            r.body["attachments"][0]["content"]
            for r in self.warden.connector.posts(successful=True)
            if r.body.get("replyToId") == activity["id"]
        ]
        assert replies, "the bot did not answer"
        return replies

    async def click(self, data: dict[str, Any]) -> dict[str, Any]:
        """Olivia clicks *Attach to this request* in her chat; the card it answered with."""
        activity = personal_invoke_activity(
            self.warden.connector.url, CHAT, FILE_ATTACH_VERB, data, OWNER
        )
        response = await self.warden.client.post("/api/messages", json=activity)
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        value: dict[str, Any] = body["value"]
        return value

    async def until(self, check: Callable[[], Awaitable[bool]]) -> None:
        """Wait (on the outbox worker) until ``check`` holds, then until cards settled."""
        await self.warden.client.app[WORKER].wait_until(check)
        await self.settled()

    async def filed(self, request_id: str) -> bool:
        record = await evidence_store.record(self.store, request_id)
        return record is not None and any(s.item_id for s in record.submissions)

    async def settled(self) -> None:
        """No evidence card or filing job left to run."""

        async def idle() -> bool:
            jobs = await outbox.list_jobs(self.store, outbox.UNFINISHED)
            return not [j for j in jobs if j.kind in (EVIDENCE_CARD_JOB, EVIDENCE_FILE_JOB)]

        await self.warden.client.app[WORKER].wait_until(idle)

    def owner_card(self) -> str:
        """The newest owner card (in the channel, or wherever Warden routed it), as text."""
        found = [
            str(r.body["attachments"][0]["content"])
            for r in sorted(
                self.warden.connector.posts(successful=True)
                + self.warden.connector.updates(successful=True),
                key=lambda r: r.time,
            )
            if r.body.get("attachments") and "Evidence requested: " in str(r.body)
        ]
        assert found, "no owner card"
        return found[-1]


@pytest.fixture
async def owner(warden: Warden, tmp_path: Path) -> Owner:
    """Olivia and the requests Warden asks her for (in a channel Warden was added to)."""
    await warden.install(CHANNEL)
    return Owner(warden, tmp_path / "requirements.yaml")


def library_items(graph: GraphSandbox) -> dict[str, dict[str, object]]:
    """Fields of the Evidence library's items, by file name."""
    site = graph.sharepoint.site_by_path(HOST, SITE.path)
    [lib] = [x for x in site.lists.values() if x.display_name == "Evidence"]
    return {str(i.fields.get("FileLeafRef", i.id)): dict(i.fields) for i in lib.items.values()}


def text_of(card: dict[str, Any]) -> str:
    """Everything a card says, as one string."""
    return str(card)


def small(data: bytes = REPORT) -> Served:
    """A small file served in one piece."""

    async def chunks() -> AsyncIterator[bytes]:
        yield data

    return Served(chunks, len(data))


async def test_file_one_open_request_filed_with_its_sha256(
    owner: Owner, downloads: Downloads, graph: GraphSandbox
) -> None:
    """With one open request taking a file, the file is handed in (the owner card shows it
    submitted) and filed with its SHA-256; the audit entry names the file, not its URL."""
    request_id = await owner.asked_for("ISO-A.8.13")
    url = downloads.offer(small())
    [reply] = await owner.attach(file_attachment("restore-report.pdf", url))
    assert "Evidence received" in text_of(reply) and "restore-report.pdf" in text_of(reply)
    await owner.until(lambda: owner.filed(request_id))
    record = await evidence_store.record(owner.store, request_id)
    assert record is not None and record.request.status is RequestStatus.SUBMITTED
    [sub] = record.submissions
    digest = hashlib.sha256(REPORT).hexdigest()
    assert sub.sha256 == digest and sub.file_size == len(REPORT)
    assert sub.file_name == "v1-restore-report.pdf"
    fields = library_items(graph)["v1-restore-report.pdf"]
    assert fields["Sha256"] == digest and fields["EvidenceType"] == "File"
    card = owner.owner_card()
    assert "Waiting for review" in card
    reviewers = [  # redrawn once filed: the same version, now with its hash
        str(r.body["attachments"][0]["content"])
        for r in owner.warden.connector.posts(successful=True)
        + owner.warden.connector.updates(successful=True)
        if "Evidence to review: " in str(r.body)
    ]
    assert digest in reviewers[-1]
    audit = await evidence_audit.audit_entries(owner.store)
    submitted = [e for e in audit if e.action.value == "submitted"]
    assert submitted[-1].details["kind"] == "file"
    assert submitted[-1].details["fileName"] == "restore-report.pdf"
    assert "download" not in str(submitted[-1].details).lower()


async def test_file_from_a_member_of_the_owner_group_is_handed_in_for_it(
    owner: Owner, downloads: Downloads, arm: ArmSandbox
) -> None:
    """A requirement owned by an Entra group: a member (checked in Graph) attaching a file in
    their personal chat hands it in for the group's request; it is filed like any other."""
    arm.set_member_groups(OWNER["aadObjectId"], [BACKUP_TEAM])
    request_id = await owner.asked_for("ISO-A.12.3", owner=BACKUP_TEAM)
    url = downloads.offer(small())
    [reply] = await owner.attach(file_attachment("drill-report.pdf", url))
    assert "Evidence received" in text_of(reply)
    await owner.until(lambda: owner.filed(request_id))
    record = await evidence_store.record(owner.store, request_id)
    assert record is not None and record.request.owner == BACKUP_TEAM
    [sub] = record.submissions
    assert sub.submitted_by == OWNER["aadObjectId"]
    assert sub.sha256 == hashlib.sha256(REPORT).hexdigest()


async def test_file_several_requests_choice_then_click_files_it(
    owner: Owner, downloads: Downloads
) -> None:
    """With two requests taking a file, Warden asks which; the click hands it in there."""
    first = await owner.asked_for("ISO-A.8.13")
    second = await owner.asked_for("ISO-A.5.15")
    url = downloads.offer(small())
    [choice] = await owner.attach(file_attachment("review.pdf", url))
    assert "Which request is this file for?" in text_of(choice)
    assert url not in text_of(choice)  # the download URL stays with Warden
    [picker] = [i for i in choice["body"] if i.get("type") == "Input.ChoiceSet"]
    assert {c["value"] for c in picker["choices"]} == {first, second}
    [button] = choice["actions"]
    assert button["type"] == "Action.Execute" and button["verb"] == FILE_ATTACH_VERB
    answer = await owner.click({**button["data"], "request": second})
    assert "Evidence received" in text_of(answer)
    await owner.until(lambda: owner.filed(second))
    untouched = await evidence_store.get(owner.store, first)
    assert untouched is not None and untouched.status is RequestStatus.OPEN
    again = await owner.click({**button["data"], "request": first})
    assert "no longer waiting" in text_of(again)


async def test_file_no_request_taking_a_file_explained(owner: Owner, downloads: Downloads) -> None:
    """A request that takes only attestations does not take a file: Warden says so."""
    request_id = await owner.asked_for("ISO-A.9.1")
    [reply] = await owner.attach(file_attachment("policy.pdf", downloads.offer(small())))
    assert "No request is waiting for a file" in text_of(reply)
    request = await evidence_store.get(owner.store, request_id)
    assert request is not None and request.status is RequestStatus.OPEN


async def test_file_in_channel_sent_to_personal_chat(owner: Owner, downloads: Downloads) -> None:
    """A file posted in a channel is not taken: attach it in the personal chat."""
    request_id = await owner.asked_for("ISO-A.8.13")
    url = downloads.offer(small())
    [reply] = await owner.attach(file_attachment("report.pdf", url), channel=True)
    assert "personal chat" in text_of(reply)
    request = await evidence_store.get(owner.store, request_id)
    assert request is not None and request.status is RequestStatus.OPEN
    assert downloads.files[url.split("UniqueId=")[1].split("&")[0]].requests == 0


async def test_file_executable_refused_with_reason(owner: Owner, downloads: Downloads) -> None:
    """An executable is refused at once, with the reason; nothing is handed in or fetched."""
    request_id = await owner.asked_for("ISO-A.8.13")
    [reply] = await owner.attach(file_attachment("setup.exe", downloads.offer(small()), "exe"))
    assert "File not accepted" in text_of(reply) and "executable" in text_of(reply)
    request = await evidence_store.get(owner.store, request_id)
    assert request is not None and request.status is RequestStatus.OPEN
    assert all(served.requests == 0 for served in downloads.files.values())


async def test_file_download_503_retried_and_filed_once(
    owner: Owner, downloads: Downloads, graph: GraphSandbox
) -> None:
    """A download answering 503 is retried by the outbox; the file is filed once."""
    request_id = await owner.asked_for("ISO-A.8.13")
    served = small()
    served.failures = [503]
    await owner.attach(file_attachment("report.pdf", downloads.offer(served)))
    await owner.until(lambda: owner.filed(request_id))
    assert served.requests == 2
    assert list(library_items(graph)) == ["v1-report.pdf"]
    record = await evidence_store.record(owner.store, request_id)
    assert record is not None and record.submissions[0].sha256 == hashlib.sha256(REPORT).hexdigest()


async def test_file_expired_url_owner_asked_to_attach_again(
    owner: Owner, downloads: Downloads, graph: GraphSandbox
) -> None:
    """A download URL answering 403 (expired) sends the request back to its owner, who is
    told on the card to attach the file again; nothing is filed."""
    request_id = await owner.asked_for("ISO-A.8.13")
    served = small()
    served.always = 403
    await owner.attach(file_attachment("report.pdf", downloads.offer(served)))

    async def handed_back() -> bool:
        request = await evidence_store.get(owner.store, request_id)
        return request is not None and request.status is RequestStatus.CHANGES_REQUESTED

    await owner.until(handed_back)
    card = owner.owner_card()
    assert "Changes requested" in card and "Attach the file again" in card
    held = await chat_store.for_submission(owner.store, request_id, 1)
    assert held is not None and held.state is chat_store.ChatFileState.EXPIRED
    assert not library_items(graph)
    fresh = downloads.offer(small())
    [reply] = await owner.attach(file_attachment("report.pdf", fresh))
    assert "Evidence received" in text_of(reply)
    await owner.until(lambda: owner.filed(request_id))


async def test_file_30_mib_streamed_through_an_upload_session(
    owner: Owner, downloads: Downloads, graph: GraphSandbox
) -> None:
    """A 30 MiB file is streamed: the download arrives in pieces, Graph receives upload
    session fragments (multiples of 320 KiB, the sandbox refuses others), and Warden never
    holds the whole file."""
    size = 30 * MIB
    request_id = await owner.asked_for("ISO-A.8.13")
    served = Served(generated(size), size)
    expected = hashlib.sha256()
    async for piece in generated(size)():
        expected.update(piece)
    tracemalloc.start()
    try:
        await owner.attach(file_attachment("backup-export.zip", downloads.offer(served), "zip"))
        await owner.until(lambda: owner.filed(request_id))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    record = await evidence_store.record(owner.store, request_id)
    assert record is not None
    [sub] = record.submissions
    assert sub.sha256 == expected.hexdigest() and sub.file_size == size
    assert served.requests == 1 and served.pieces == size // PIECE
    puts = graph.calls("uploadSession_PutBytes")
    assert len(puts) >= 2 and all(call.ok for call in puts)
    assert peak < 20 * MIB, f"peak {peak / MIB:.1f} MiB while filing 30 MiB"
