"""Streamed evidence filing against the Graph sandbox, with a real azure-identity token.

``EvidenceFiler`` runs as in production: msgraph-sdk over Warden's resilient httpx client
(the one ``graph.client.graph_http`` builds) for Graph calls, the same client without a
token for upload URLs, and the SSRF guard for download redirects. Large files are
generated on the fly and never held whole, by the test either.
"""

from __future__ import annotations

import functools
import random
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from azure.identity.aio import ClientSecretCredential

from connectors.ssrf import SsrfPolicy, stream
from core.breaker import Breakers
from graph.client import graph_client, graph_http
from graph.evidence_files import (
    FRAGMENT_UNIT,
    EvidenceFiler,
    EvidencePath,
    EvidenceRefused,
    EvidenceSource,
    UploadLimits,
    iter_source,
    sha256_of,
    url_source,
)
from sandbox.arm import ArmSandbox, run_arm_sandbox
from sandbox.graph import Fault, GraphSandbox, run_graph_sandbox

HOST = "contoso.sharepoint.com"
MB = 1000 * 1000
PIECE = 64 * 1024
LIMITS = UploadLimits(max_bytes=100 * MB, retry_wait=0.01)


def generated(
    size: int, seed: int = 7, on_offset: Callable[[int], None] | None = None
) -> Callable[[], AsyncIterator[bytes]]:
    """A factory of reproducible pseudo-random streams of ``size`` bytes (64 KiB pieces)."""

    async def chunks() -> AsyncIterator[bytes]:
        """Yield the bytes piece by piece; ``on_offset`` hears each piece's start."""
        rng = random.Random(seed)
        for start in range(0, size, PIECE):
            if on_offset is not None:
                on_offset(start)
            yield rng.randbytes(min(PIECE, size - start))

    return chunks


async def expected_sha256(size: int, seed: int = 7) -> str:
    """The SHA-256 of ``generated(size, seed)``."""
    return (await sha256_of(generated(size, seed)()))[1]


def path(filename: str = "report.pdf") -> EvidencePath:
    """An evidence path under a fixed requirement, period and request."""
    return EvidencePath("ISO27001-A.8.13", "2026-Q4", "REQ-42", filename)


def put_calls(graph: GraphSandbox) -> list[int | None]:
    """Statuses of the PUTs to upload URLs, in order."""
    return [call.status for call in graph.calls("uploadSession_PutBytes")]


def session_creations(graph: GraphSandbox) -> int:
    """How many createUploadSession calls reached the sandbox."""
    return sum(call.path.endswith(":/createUploadSession") for call in graph.calls("drives"))


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox (token endpoint, TLS CA)."""
    sandbox = ArmSandbox(seed_examples=False, token_lifetime=4 * 3600)  # outlives clock jumps
    async with run_arm_sandbox(sandbox=sandbox) as served:
        yield served


@pytest.fixture
async def graph(arm: ArmSandbox, tmp_path: Path) -> AsyncIterator[GraphSandbox]:
    """The Graph sandbox with an Evidence site."""
    async with run_graph_sandbox(arm, state_dir=tmp_path / "graph") as served:
        served.add_site(HOST, "sites/Evidence")
        yield served


@pytest.fixture
async def credential(arm: ArmSandbox) -> AsyncIterator[ClientSecretCredential]:
    """The real async credential of an app holding Sites.ReadWrite.All."""
    app = arm.register_client("warden-evidence", graph_roles=["Sites.ReadWrite.All"])
    async with ClientSecretCredential(
        arm.tenant_id,
        app.client_id,
        app.secret,
        authority=arm.authority,
        connection_verify=str(arm.ca_path),
    ) as made:
        yield made


@pytest.fixture
async def filer(
    arm: ArmSandbox, graph: GraphSandbox, credential: ClientSecretCredential
) -> AsyncIterator[EvidenceFiler]:
    """Warden's filer on a new document library of the Evidence site."""
    site = graph.sharepoint.site_by_path(HOST, "sites/Evidence")
    body = {"displayName": "Evidence Files", "list": {"template": "documentLibrary"}}
    library = graph.sharepoint.add_list(site, body)
    assert library.drive_id is not None
    policy = SsrfPolicy(
        allowed_hosts=("127.0.0.1",), allow_private=True, allowed_ports=None, max_bytes=200 * MB
    )
    fetch = functools.partial(stream, policy=policy, ssl_context=arm.ssl_context())
    async with graph_http(Breakers(), verify=arm.ssl_context()) as http:
        client = graph_client(credential, http, base_url=graph.graph_url)
        yield EvidenceFiler(client, http, library.drive_id, fetch=fetch, limits=LIMITS)


async def downloaded_sha256(filer: EvidenceFiler, item_id: str) -> tuple[int, str]:
    """Length and SHA-256 of what Graph serves for the item (302 followed without token)."""
    async with filer.download(item_id) as body:
        return await sha256_of(body)


async def test_file_small_uses_simple_put_and_hash_matches_download(
    filer: EvidenceFiler, graph: GraphSandbox
) -> None:
    """A 100 kB file goes by one PUT .../content; the downloaded bytes hash the same."""
    size = 100 * 1000
    filed = await filer.file(EvidenceSource(generated(size), size), path())
    assert filed.size == size and filed.sha256 == await expected_sha256(size)
    assert filed.web_url.endswith("/ISO27001-A.8.13/2026-Q4/REQ-42/report.pdf")
    assert session_creations(graph) == 0 and put_calls(graph) == []
    [put] = [c for c in graph.calls("drives") if c.method == "PUT"]
    assert put.path.endswith("root:/ISO27001-A.8.13/2026-Q4/REQ-42/report.pdf:/content")
    assert await downloaded_sha256(filer, filed.item_id) == (size, filed.sha256)
    [download] = graph.calls("download")
    assert not download.auth_present


async def test_file_small_of_unknown_size_uses_simple_put(filer: EvidenceFiler) -> None:
    """Without a declared size, a stream under the simple limit is still filed."""
    filed = await filer.file(iter_source(generated(5000)), path("notes.txt"))
    assert filed.size == 5000 and filed.sha256 == await expected_sha256(5000)


async def test_file_50mb_uses_session_in_320k_multiples_with_bounded_memory(
    filer: EvidenceFiler, graph: GraphSandbox
) -> None:
    """50 MB via an upload session: tokenless fragments of n x 320 KiB, peak memory small."""
    size = 50 * MB
    tracemalloc.start()
    try:
        filed = await filer.file(EvidenceSource(generated(size), size), path("archive.zip"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the fragment on its way, the next one read ahead, the sandbox's copy of the body
    # (it runs in this process), slack: never the file
    assert peak < min(size / 3, 4 * LIMITS.fragment), f"peak {peak} bytes"
    assert filed.size == size and filed.sha256 == await expected_sha256(size)
    puts = graph.calls("uploadSession_PutBytes")
    assert session_creations(graph) == 1 and len(puts) == -(-size // LIMITS.fragment)
    assert LIMITS.fragment % FRAGMENT_UNIT == 0
    assert all(not call.auth_present for call in puts)
    assert [c.status for c in puts] == [202] * (len(puts) - 1) + [201]
    assert await downloaded_sha256(filer, filed.item_id) == (size, filed.sha256)


async def test_file_chunk_503_resumes_from_next_expected_ranges_not_restarted(
    filer: EvidenceFiler, graph: GraphSandbox
) -> None:
    """A 503 on one fragment: GET uploadUrl, resend that fragment, same session."""
    size = 30 * MB
    fault = Fault(status=503, method="PUT", path="/_upload/")

    def arm_fault(offset: int) -> None:
        if offset == 12 * MB // PIECE * PIECE:
            graph.add_fault(fault)

    filed = await filer.file(EvidenceSource(generated(size, on_offset=arm_fault), size), path())
    fragments = -(-size // LIMITS.fragment)
    statuses = put_calls(graph)
    assert fault.applied == 1 and statuses.count(503) == 1 and statuses.index(503) > 0
    assert len(statuses) == fragments + 1 and session_creations(graph) == 1
    log = [c.operation for c in graph.calls() if c.operation.startswith("uploadSession")]
    failed = statuses.index(503)
    assert (
        log[failed + 1] == "uploadSession_GetStatus" and log.count("uploadSession_GetStatus") == 1
    )
    assert await downloaded_sha256(filer, filed.item_id) == (size, await expected_sha256(size))


async def test_file_session_gone_restarts_with_new_session(
    filer: EvidenceFiler, graph: GraphSandbox
) -> None:
    """A 404 on a fragment (session expired): a new session from byte 0, a fresh stream."""
    size = 12 * MB
    graph.add_fault(Fault(status=404, method="PUT", path="/_upload/", code="itemNotFound"))
    filed = await filer.file(EvidenceSource(generated(size), size), path("big.csv"))
    assert session_creations(graph) == 2 and put_calls(graph)[0] == 404
    assert filed.sha256 == await expected_sha256(size)
    assert await downloaded_sha256(filer, filed.item_id) == (size, filed.sha256)


async def test_file_session_expired_midway_restarts_from_byte_zero(
    filer: EvidenceFiler, graph: GraphSandbox, arm: ArmSandbox
) -> None:
    """The session expires mid-upload (sandbox clock +61 min): a new session, whole file."""
    size = 16 * MB
    jumped: list[int] = []

    def expire(offset: int) -> None:
        if offset >= 8 * MB and not jumped:
            jumped.append(offset)
            arm.advance_clock(61 * 60)

    filed = await filer.file(EvidenceSource(generated(size, on_offset=expire), size), path())
    statuses = put_calls(graph)
    assert session_creations(graph) == 2 and statuses.count(404) == 1
    assert statuses[statuses.index(404) + 1 :] == [202] * (
        len(statuses) - statuses.index(404) - 2
    ) + [201]
    assert await downloaded_sha256(filer, filed.item_id) == (size, await expected_sha256(size))


async def test_file_from_url_streams_through_ssrf_guard(
    filer: EvidenceFiler, graph: GraphSandbox
) -> None:
    """A source URL (here a pre-authenticated download URL) is fetched through the guard."""
    size = 6 * MB
    first = await filer.file(EvidenceSource(generated(size), size), path("a.zip"))
    async with filer.download(first.item_id) as body:
        url = body.url
    copied = await filer.file(url_source(filer.fetch, url, size), path("b.zip"))
    assert copied.sha256 == first.sha256 and session_creations(graph) == 2


@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("tool.exe", b"%PDF-1.7"),
        ("run.PS1", b"x"),
        ("report.pdf", b"MZ\x90\x00"),
        ("scan.png", b"\x7fELF\x02"),
    ],
)
async def test_file_executable_refused_before_any_upload(
    filer: EvidenceFiler, graph: GraphSandbox, name: str, head: bytes
) -> None:
    """An executable name or content is refused; Graph sees no upload at all."""

    async def chunks() -> AsyncIterator[bytes]:
        yield head + b"\x00" * 10

    with pytest.raises(EvidenceRefused, match="executable"):
        await filer.file(EvidenceSource(chunks, len(head) + 10), path(name))
    assert graph.calls() == []


async def test_file_executable_large_refused_before_session(
    filer: EvidenceFiler, graph: GraphSandbox
) -> None:
    """A large file whose first bytes are a PE header never gets an upload session."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b"MZ" + b"\x00" * (PIECE - 2)
        for _ in range(200):
            yield b"\x00" * PIECE

    with pytest.raises(EvidenceRefused, match="executable"):
        await filer.file(EvidenceSource(chunks, 201 * PIECE), path("data.bin"))
    assert graph.calls() == []


async def test_file_oversize_declared_refused_without_reading(
    filer: EvidenceFiler, graph: GraphSandbox
) -> None:
    """A declared size over the limit is refused before the stream is even opened."""
    opened: list[bool] = []

    def source() -> AsyncIterator[bytes]:
        opened.append(True)
        return generated(10)()

    with pytest.raises(EvidenceRefused, match="larger than Warden accepts"):
        await filer.file(EvidenceSource(source, LIMITS.max_bytes + 1), path())
    assert opened == [] and graph.calls() == []


async def test_file_unknown_size_over_simple_limit_refused(
    filer: EvidenceFiler, graph: GraphSandbox
) -> None:
    """A large stream without a declared size is refused after the simple limit, unsent."""
    with pytest.raises(EvidenceRefused, match="needs the size"):
        await filer.file(iter_source(generated(LIMITS.simple_limit + 1)), path())
    assert graph.calls() == []


async def test_file_longer_than_declared_cancels_session_before_last_fragment(
    filer: EvidenceFiler, graph: GraphSandbox
) -> None:
    """A stream longer than declared: refused before the last fragment, session deleted."""
    declared = 6 * MB
    with pytest.raises(EvidenceRefused, match="not as long as declared"):
        await filer.file(EvidenceSource(generated(declared + 1), declared), path())
    assert all(status == 202 for status in put_calls(graph))
    assert [c.status for c in graph.calls("uploadSession_Cancel")] == [204]
    assert graph.files is not None
    assert not [p for p in graph.files.root.rglob("*") if p.is_file() and ".uploads" not in str(p)]


def test_evidence_path_refuses_traversal_and_bad_characters() -> None:
    """Folder names that would escape or that SharePoint refuses are rejected."""
    for bad in ("..", "a/b", "x:y", "", " lead", "trail."):
        with pytest.raises(EvidenceRefused):
            EvidencePath("REQ", "2026-Q4", bad, "f.pdf")


async def test_upload_client_with_bearer_token_is_refused(filer: EvidenceFiler) -> None:
    """The upload URL client must not carry a token: the filer refuses one that does."""
    async with httpx.AsyncClient(headers={"Authorization": "Bearer x"}) as tokened:
        with pytest.raises(ValueError, match="bearer"):
            EvidenceFiler(filer.graph, tokened, "drive", fetch=filer.fetch)
