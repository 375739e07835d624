"""The SSRF guard, offline: a scripted network backend stands in for the sockets.

The guard's own httpcore pool, pinning backend and redirect loop run for real; only the
lowest layer (``connect_tcp`` and the bytes on the wire) is scripted, so every test can
prove which address was dialled, with which TLS name, and that nothing was dialled at all.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Iterable, Sequence

import httpcore
import httpx
import pytest

from connectors.http import RetryPolicy
from connectors.ssrf import (
    Resolver,
    SsrfError,
    SsrfPolicy,
    default_client,
    fetch,
    resilient_factory,
    stream,
)
from connectors.ssrf_rules import NOT_ALLOWED, NOT_FOUND, TOO_LARGE, TOO_SLOW, UNREACHABLE
from core.breaker import Breakers
from tests.unit.test_ssrf_rules import FORBIDDEN, PUBLIC, PUBLIC_V6

POLICY = SsrfPolicy(max_bytes=1024, timeout=5.0)
WEB = SsrfPolicy(allowed_schemes=("https", "http"), allowed_ports=None)
"""Lets http through, so that the address (not the scheme) is what a test sees refused."""


def answer(status: int = 200, body: bytes = b"ok", **headers: str) -> list[bytes]:
    """One HTTP/1.1 response (closing its connection), header block then body."""
    fields = {"content-type": "text/plain", "content-length": str(len(body))}
    fields.update({name.replace("_", "-"): value for name, value in headers.items()})
    head = f"HTTP/1.1 {status} X\r\nconnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in fields.items() if value)
    return [(head + "\r\n").encode(), body]


class FakeStream(httpcore.AsyncNetworkStream):
    """A connection that records what was sent and replays scripted bytes."""

    def __init__(self, backend: FakeBackend, chunks: list[bytes]) -> None:
        self._backend = backend
        self._chunks = chunks

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        if not self._chunks:
            return b""
        chunk = self._chunks.pop(0)
        if chunk == STALL:
            await asyncio.Event().wait()
        return chunk

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self._backend.sent.append(buffer)

    async def aclose(self) -> None:
        pass

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        self._backend.tls_names.append(server_hostname)
        return self


STALL = b"<stall>"
"""A scripted chunk that never arrives: the server goes quiet."""


class FakeBackend(httpcore.AsyncNetworkBackend):
    """Serves one scripted answer per connection and records every dial."""

    def __init__(self, *answers: list[bytes]) -> None:
        self.answers = list(answers)
        self.dialled: list[tuple[str, int]] = []
        self.tls_names: list[str | None] = []
        self.sent: list[bytes] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.dialled.append((host, port))
        return FakeStream(self, list(self.answers.pop(0)))

    def request_heads(self) -> list[str]:
        """The request header blocks sent, in order."""
        return [chunk.decode() for chunk in self.sent if chunk.startswith(b"GET ")]


class FakeResolver:
    """Answers each name from a script, one answer per call, and records the calls."""

    def __init__(self, **script: Sequence[Sequence[str]]) -> None:
        self.script = {name.replace("_", "."): list(answers) for name, answers in script.items()}
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append(host)
        answers = self.script.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers.pop(0)


async def no_resolution(host: str, port: int) -> Sequence[str]:
    """A resolver that must not be asked."""
    raise AssertionError(f"resolver asked for {host}")


async def refused(
    url: str,
    policy: SsrfPolicy = POLICY,
    *,
    resolver: Resolver = no_resolution,
    backend: FakeBackend | None = None,
) -> SsrfError:
    """Fetch ``url`` expecting a refusal; return the error."""
    with pytest.raises(SsrfError) as caught:
        await fetch(url, policy, resolver=resolver, network_backend=backend or FakeBackend())
    return caught.value


@pytest.mark.parametrize("address", FORBIDDEN)
async def test_fetch_literal_forbidden_address_refused_without_connecting(address: str) -> None:
    """A link to a non-public literal address is refused before any lookup or dial."""
    host = f"[{address}]" if ":" in address else address
    backend = FakeBackend(answer())
    error = await refused(f"https://{host}/x", backend=backend)
    assert error.reason == UNREACHABLE
    assert backend.dialled == []


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.1/",
        "http://127.1/",
        "https://0xa9fea9fe/latest/meta-data",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:a9fe:a9fe]/",
    ],
)
async def test_fetch_numeric_host_trick_refused_without_connecting(url: str) -> None:
    """Numeric spellings of loopback and metadata addresses are refused before any dial."""
    backend = FakeBackend(answer())
    error = await refused(url, WEB, backend=backend)
    assert error.reason == UNREACHABLE
    assert backend.dialled == []


@pytest.mark.parametrize(
    "url", ["https://evil-contoso.com/x", "https://contoso.com.evil.com/x", "https://8.8.8.8/"]
)
async def test_fetch_host_off_allowlist_refused(url: str) -> None:
    """A host outside the allowed list is refused with the allow-list reason."""
    policy = SsrfPolicy(allowed_hosts=("*.contoso.com", "contoso.com"))
    error = await refused(url, policy)
    assert error.reason == NOT_ALLOWED


async def test_fetch_public_name_dials_pinned_address_with_tls_name() -> None:
    """The socket goes to the validated address; TLS and Host still name the host."""
    backend = FakeBackend(answer(body=b"evidence"))
    resolver = FakeResolver(files_contoso_com=[[PUBLIC]])
    body = await fetch(
        "https://files.contoso.com/r.pdf?sig=1", POLICY, resolver=resolver, network_backend=backend
    )
    assert (body.content, body.status, body.content_type) == (b"evidence", 200, "text/plain")
    assert body.url == "https://files.contoso.com/r.pdf?sig=1"
    assert backend.dialled == [(PUBLIC, 443)]
    assert backend.tls_names == ["files.contoso.com"]
    assert "host: files.contoso.com\r\n" in backend.request_heads()[0].lower()


async def test_fetch_dns_rebinding_second_answer_never_used() -> None:
    """A name that resolves public then loopback is resolved once; loopback is never dialled."""
    backend = FakeBackend(answer(302, b"", location="/second"), answer(body=b"done"))
    resolver = FakeResolver(rebind_example=[[PUBLIC], ["127.0.0.1"]])
    body = await fetch(
        "https://rebind.example/first", POLICY, resolver=resolver, network_backend=backend
    )
    assert body.content == b"done"
    assert resolver.calls == ["rebind.example"]
    assert resolver.script["rebind.example"] == [["127.0.0.1"]]
    assert backend.dialled == [(PUBLIC, 443), (PUBLIC, 443)]


async def test_fetch_retries_through_resilient_layer_reuse_pinned_address() -> None:
    """Retries by ResilientTransport go through the guard again, on the same pin."""
    backend = FakeBackend(answer(503, b""), answer(body=b"second try"))
    resolver = FakeResolver(rebind_example=[[PUBLIC], ["127.0.0.1"]])
    retry = RetryPolicy(attempts=3, timeout=5.0, wait_initial=0, wait_max=0, wait_jitter=0)
    body = await fetch(
        "https://rebind.example/",
        POLICY,
        client_factory=resilient_factory(Breakers(), retry),
        resolver=resolver,
        network_backend=backend,
    )
    assert body.content == b"second try"
    assert resolver.calls == ["rebind.example"]
    assert backend.dialled == [(PUBLIC, 443), (PUBLIC, 443)]


@pytest.mark.parametrize("private", ["10.0.0.5", "127.0.0.1", "fd00::5", "169.254.169.254"])
async def test_fetch_name_with_one_private_address_refused(private: str) -> None:
    """A name whose answers include one non-public address is refused, nothing dialled."""
    backend = FakeBackend(answer())
    resolver = FakeResolver(mixed_example=[[PUBLIC, PUBLIC_V6, private]])
    error = await refused("https://mixed.example/", resolver=resolver, backend=backend)
    assert error.reason == UNREACHABLE
    assert backend.dialled == []


@pytest.mark.parametrize(
    ("location", "policy", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data", POLICY, "only https links are accepted"),
        ("http://169.254.169.254/latest/meta-data", WEB, UNREACHABLE),
        ("https://169.254.169.254/latest/meta-data", POLICY, UNREACHABLE),
        ("https://[fd00:ec2::254]/latest/meta-data", POLICY, UNREACHABLE),
        ("https://2852039166/latest/meta-data", POLICY, UNREACHABLE),
        ("https://internal.example/admin", POLICY, UNREACHABLE),
        ("https://localhost/", POLICY, UNREACHABLE),
    ],
)
async def test_fetch_redirect_to_metadata_or_private_refused(
    location: str, policy: SsrfPolicy, reason: str
) -> None:
    """A redirect to the metadata address or a private one is refused; only hop 1 dialled."""
    backend = FakeBackend(answer(302, b"", location=location), answer(body=b"secret"))
    resolver = FakeResolver(
        start_example=[[PUBLIC]], internal_example=[["10.1.2.3"]], localhost=[["127.0.0.1"]]
    )
    url = "https://start.example/go"
    error = await refused(url, policy, resolver=resolver, backend=backend)
    assert error.reason == reason
    assert backend.dialled == [(PUBLIC, 443)]


async def test_fetch_too_many_redirects_refused() -> None:
    """More redirects than ``max_redirects`` are refused."""
    hops = [answer(302, b"", location=f"/{n}") for n in range(3)]
    policy = SsrfPolicy(max_redirects=2)
    resolver = FakeResolver(loop_example=[[PUBLIC]])
    backend = FakeBackend(*hops)
    error = await refused("https://loop.example/", policy, resolver=resolver, backend=backend)
    assert error.reason == "that link redirects too many times"
    assert len(backend.dialled) == 3


async def test_fetch_cross_host_redirect_drops_authorization() -> None:
    """Credentials a client carries go to the first host only, not to a redirect target."""
    backend = FakeBackend(answer(302, b"", location="https://other.example/"), answer())
    resolver = FakeResolver(first_example=[[PUBLIC]], other_example=[["8.8.8.8"]])

    def factory(transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
        client = default_client(transport)
        client.headers["Authorization"] = "Bearer token-for-first"
        return client

    await fetch(
        "https://first.example/",
        POLICY,
        client_factory=factory,
        resolver=resolver,
        network_backend=backend,
    )
    first, second = (head.lower() for head in backend.request_heads())
    assert "authorization: bearer" in first
    assert "authorization" not in second


async def test_fetch_declared_length_over_limit_refused() -> None:
    """A Content-Length above ``max_bytes`` is refused before the body is read."""
    backend = FakeBackend(answer(body=b"x" * 2000))
    resolver = FakeResolver(big_example=[[PUBLIC]])
    error = await refused("https://big.example/", resolver=resolver, backend=backend)
    assert error.reason == TOO_LARGE


async def test_stream_undeclared_body_over_limit_refused_not_truncated() -> None:
    """A body without a length that grows past ``max_bytes`` is refused mid-stream."""
    chunks = [*answer(body=b"", content_length="")[:1], b"x" * 600, b"y" * 600]
    backend = FakeBackend(chunks)
    resolver = FakeResolver(big_example=[[PUBLIC]])
    received: list[bytes] = []
    with pytest.raises(SsrfError) as caught:
        async with stream(
            "https://big.example/", POLICY, resolver=resolver, network_backend=backend
        ) as body:
            received.extend([chunk async for chunk in body])
    assert caught.value.reason == TOO_LARGE
    assert received == []


async def test_stream_body_at_limit_yields_chunks() -> None:
    """A body of exactly ``max_bytes`` arrives chunk by chunk, whole."""
    chunks = [*answer(body=b"", content_length="")[:1], b"a" * 512, b"b" * 512]
    backend = FakeBackend(chunks)
    resolver = FakeResolver(ok_example=[[PUBLIC]])
    async with stream(
        "https://ok.example/", POLICY, resolver=resolver, network_backend=backend
    ) as body:
        received = [chunk async for chunk in body]
    assert received == [b"a" * 512, b"b" * 512]
    assert body.received == 1024


async def test_fetch_silent_server_times_out() -> None:
    """A server that sends headers then goes quiet is cut off at the overall deadline."""
    backend = FakeBackend([*answer(body=b"", content_length="10")[:1], STALL])
    resolver = FakeResolver(slow_example=[[PUBLIC]])
    policy = SsrfPolicy(timeout=0.2)
    error = await refused("https://slow.example/", policy, resolver=resolver, backend=backend)
    assert error.reason == TOO_SLOW


@pytest.mark.parametrize(
    ("response", "status"),
    [(answer(404, b"no"), 404), (answer(500, b"no"), 500), (answer(302, b""), 302)],
)
async def test_fetch_error_status_refused_with_status(response: list[bytes], status: int) -> None:
    """A final answer that is not 2xx (a redirect without Location too) is refused."""
    resolver = FakeResolver(err_example=[[PUBLIC]])
    backend = FakeBackend(response)
    error = await refused("https://err.example/", resolver=resolver, backend=backend)
    assert error.status == status


async def test_fetch_encoded_body_refused() -> None:
    """A body sent compressed despite ``Accept-Encoding: identity`` is refused."""
    backend = FakeBackend(answer(body=b"\x1f\x8b", content_encoding="gzip"))
    resolver = FakeResolver(gz_example=[[PUBLIC]])
    error = await refused("https://gz.example/", resolver=resolver, backend=backend)
    assert error.reason == "that link sent encoded content"
    assert "accept-encoding: identity" in backend.request_heads()[0].lower()


async def test_fetch_unknown_name_not_found() -> None:
    """A name that does not resolve is refused as not found."""
    error = await refused("https://nowhere.example/", resolver=FakeResolver())
    assert error.reason == NOT_FOUND


async def test_fetch_localhost_through_system_resolver_refused() -> None:
    """The real resolver's answers for ``localhost`` are validated and refused."""
    backend = FakeBackend(answer())
    with pytest.raises(SsrfError) as caught:
        await fetch("https://localhost/", POLICY, network_backend=backend)
    assert caught.value.reason == UNREACHABLE
    assert backend.dialled == []


async def test_fetch_factory_bypassing_guard_raises() -> None:
    """A client factory that ignores the guarded transport is caught on the first answer."""

    def bypass(transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))

    resolver = FakeResolver(x_example=[[PUBLIC]])
    with pytest.raises(RuntimeError, match="bypassed"):
        await fetch("https://x.example/", POLICY, client_factory=bypass, resolver=resolver)


async def test_fetch_refusal_log_keeps_query_and_path_out(caplog: pytest.LogCaptureFixture) -> None:
    """The refusal is logged with host and address only: no path, query or credential."""
    caplog.set_level(logging.INFO, logger="connectors.ssrf")
    error = await refused("https://10.0.0.1/sites/hr/report?token=s3cret")
    assert "10.0.0.1" in caplog.text
    for text in (caplog.text, str(error)):
        assert "s3cret" not in text
        assert "/sites/hr" not in text
