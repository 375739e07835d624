"""The SSRF guard against a real HTTPS server on loopback, reached through a pinned name.

The server holds a certificate for ``evidence.warden.test`` only (no IP address in it);
the injected resolver maps that name to 127.0.0.1, and ``allow_private`` is set for these
tests alone. A fetch that succeeds therefore proves the socket went to the pinned address
while SNI and certificate verification used the host name.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connectors.ssrf import SsrfError, SsrfPolicy, fetch, stream
from connectors.ssrf_rules import TOO_LARGE, TOO_SLOW, UNREACHABLE

NAME = "evidence.warden.test"
BIG = bytes(range(256)) * 1024
"""256 KiB the server sends in 16 KiB writes."""


def certificate(name: str) -> tuple[bytes, bytes]:
    """A self-signed certificate for DNS name ``name`` only, and its key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    private = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(pem), private


@dataclass
class EvidenceServer:
    """A running HTTPS server and what it saw: SNI names, Host headers, peers."""

    port: int
    client_context: ssl.SSLContext
    sni: list[str | None] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    peers: list[str | None] = field(default_factory=list)
    resolutions: list[str] = field(default_factory=list)

    def policy(self, **overrides: object) -> SsrfPolicy:
        """The test policy: this host and port only, private addresses allowed."""
        values: dict[str, object] = {
            "allowed_hosts": (NAME,),
            "allowed_ports": (self.port,),
            "allow_private": True,
            "max_bytes": 512 * 1024,
            "timeout": 5.0,
        }
        values.update(overrides)
        return SsrfPolicy(**values)  # type: ignore[arg-type]

    def url(self, path: str) -> str:
        """The server's URL for ``path``, by name."""
        return f"https://{NAME}:{self.port}{path}"

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        """The injected resolver: the test name is loopback, nothing else exists."""
        self.resolutions.append(host)
        return ["127.0.0.1"] if host == NAME else []


def app(server: list[EvidenceServer], release: asyncio.Event) -> web.Application:
    """The evidence site: a report, a big file, a redirect and a page that goes silent."""

    def record(request: web.Request) -> None:
        server[0].hosts.append(request.host)
        server[0].peers.append(request.remote)

    async def send(request: web.Request, data: bytes, *, stall: bool) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        for start in range(0, len(data), 16 * 1024):
            await response.write(data[start : start + 16 * 1024])
        if stall:
            await release.wait()
        await response.write_eof()
        return response

    async def report(request: web.Request) -> web.StreamResponse:
        record(request)
        return web.Response(body=b"evidence: MFA enforced", content_type="text/plain")

    async def big(request: web.Request) -> web.StreamResponse:
        record(request)
        return await send(request, BIG, stall=False)

    async def silent(request: web.Request) -> web.StreamResponse:
        record(request)
        return await send(request, b"head", stall=True)

    async def hop(request: web.Request) -> web.StreamResponse:
        record(request)
        raise web.HTTPFound("/report.txt")

    async def busy(request: web.Request) -> web.StreamResponse:
        record(request)
        return web.Response(status=503, text="try later")

    application = web.Application()
    routes = [("/report.txt", report), ("/big.bin", big), ("/silent", silent), ("/busy", busy)]
    for path, handler in routes:
        application.router.add_get(path, handler)
    application.router.add_get("/hop", hop)
    return application


@contextlib.asynccontextmanager
async def serve(cert_name: str, directory: Path) -> AsyncIterator[EvidenceServer]:
    """Serve the evidence site over TLS on 127.0.0.1 with a certificate for ``cert_name``."""
    cert, key = certificate(cert_name)
    (directory / "cert.pem").write_bytes(cert)
    (directory / "key.pem").write_bytes(key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    holder: list[EvidenceServer] = []
    release = asyncio.Event()
    runner = web.AppRunner(app(holder, release))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    server = EvidenceServer(
        runner.addresses[0][1], ssl.create_default_context(cadata=cert.decode())
    )
    holder.append(server)

    def note_sni(_socket: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        server.sni.append(name)

    context.sni_callback = note_sni
    try:
        yield server
    finally:
        release.set()
        await runner.cleanup()


@pytest.fixture
async def evidence(tmp_path: Path) -> AsyncIterator[EvidenceServer]:
    """The evidence site with a certificate for the test name."""
    async with serve(NAME, tmp_path) as server:
        yield server


async def test_fetch_pinned_loopback_verifies_certificate_for_name(
    evidence: EvidenceServer,
) -> None:
    """The socket goes to the pinned 127.0.0.1; SNI, certificate and Host use the name."""
    body = await fetch(
        evidence.url("/report.txt?sig=abc"),
        evidence.policy(),
        resolver=evidence.resolve,
        ssl_context=evidence.client_context,
    )
    assert body.content == b"evidence: MFA enforced"
    assert body.content_type == "text/plain"
    assert evidence.sni == [NAME]
    assert evidence.hosts == [f"{NAME}:{evidence.port}"]
    assert evidence.peers == ["127.0.0.1"]
    assert evidence.resolutions == [NAME]


async def test_fetch_certificate_for_other_name_refused_by_tls(tmp_path: Path) -> None:
    """A certificate that does not name the host fails verification: nothing is fetched."""
    async with serve("other.warden.test", tmp_path) as server:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await fetch(
                server.url("/report.txt"),
                server.policy(),
                resolver=server.resolve,
                ssl_context=server.client_context,
            )
        assert server.sni == [NAME]
        assert server.hosts == []


async def test_fetch_loopback_without_escape_hatch_refused(evidence: EvidenceServer) -> None:
    """Without ``allow_private`` the same name, resolving to loopback, is refused unsent."""
    with pytest.raises(SsrfError) as caught:
        await fetch(
            evidence.url("/report.txt"),
            evidence.policy(allow_private=False),
            resolver=evidence.resolve,
            ssl_context=evidence.client_context,
        )
    assert caught.value.reason == UNREACHABLE
    assert evidence.sni == []


async def test_fetch_same_host_redirect_followed_on_one_resolution(
    evidence: EvidenceServer,
) -> None:
    """A redirect to a path on the same host is followed, still on the first resolution."""
    body = await fetch(
        evidence.url("/hop"),
        evidence.policy(),
        resolver=evidence.resolve,
        ssl_context=evidence.client_context,
    )
    assert body.content == b"evidence: MFA enforced"
    assert body.url == evidence.url("/report.txt")
    assert evidence.resolutions == [NAME]


async def test_stream_large_file_hashed_in_chunks(evidence: EvidenceServer) -> None:
    """A large file arrives in several chunks that hash to the file's digest."""
    digest = hashlib.sha256()
    chunks = 0
    async with stream(
        evidence.url("/big.bin"),
        evidence.policy(),
        resolver=evidence.resolve,
        ssl_context=evidence.client_context,
    ) as body:
        async for chunk in body:
            digest.update(chunk)
            chunks += 1
    assert digest.hexdigest() == hashlib.sha256(BIG).hexdigest()
    assert chunks > 1


async def test_stream_file_over_limit_refused(evidence: EvidenceServer) -> None:
    """A file larger than ``max_bytes`` (no length declared) is refused while streaming."""
    with pytest.raises(SsrfError) as caught:
        async with stream(
            evidence.url("/big.bin"),
            evidence.policy(max_bytes=100_000),
            resolver=evidence.resolve,
            ssl_context=evidence.client_context,
        ) as body:
            async for _chunk in body:
                pass
    assert caught.value.reason == TOO_LARGE


async def test_fetch_silent_server_times_out(evidence: EvidenceServer) -> None:
    """A server that stops sending mid-body is cut off at the overall deadline."""
    with pytest.raises(SsrfError) as caught:
        await fetch(
            evidence.url("/silent"),
            evidence.policy(timeout=0.5),
            resolver=evidence.resolve,
            ssl_context=evidence.client_context,
        )
    assert caught.value.reason == TOO_SLOW
