"""The SSRF guard: every URL Warden fetches on someone's say-so goes through it.

A URL is refused (``SsrfError``: a reason safe to show the user, a detail for operators)
unless ``connectors.ssrf_rules.check_url`` accepts it: allowed scheme (https by default),
no credentials, an allowed host and port, and no literal address that is not public
(numeric hosts read the way resolvers read them).

DNS rebinding: ``GuardedTransport`` resolves each host once (``loop.getaddrinfo``, or the
injected resolver), validates every address returned and pins them. Its httpcore network
backend then connects to a pinned address only, never to the name, so the name is not
resolved again; TLS is still started with the host name, so SNI and certificate checks
apply to the name, and the Host header is the URL's. A host that was not pinned is never
connected to.

Redirects are never followed by the client: ``stream`` follows up to
``SsrfPolicy.max_redirects`` itself, checking each ``Location`` like the first URL, and
drops credential headers when the origin changes. The body is read raw
(``Accept-Encoding: identity``) and refused, not truncated, beyond ``max_bytes``;
``timeout`` is one wall-clock deadline from the call to the last byte, redirects included.

It composes with ``connectors.http``: ``resilient_factory`` puts ``ResilientTransport``
(breaker, retries) outside the guard, so every retry goes through the guard again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import httpcore
import httpx

from connectors.http import DEFAULT_TIMEOUT, AttemptCallback, ResilientTransport, RetryPolicy
from connectors.ssrf_rules import (
    DEFAULT_PORTS,
    INVALID,
    NOT_FOUND,
    TOO_LARGE,
    TOO_SLOW,
    UNREACHABLE,
    IPAddress,
    SsrfError,
    SsrfPolicy,
    check_address,
    check_url,
    host_key,
    literal_address,
)
from core.breaker import Breakers

__all__ = [
    "GUARD_EXTENSION",
    "ClientFactory",
    "FetchedBody",
    "GuardedTransport",
    "Resolver",
    "SsrfError",
    "SsrfPolicy",
    "StreamedBody",
    "check_url",
    "default_client",
    "fetch",
    "resilient_factory",
    "stream",
    "system_resolver",
]

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``(host, port) -> addresses``: the resolver the guard asks, once per host and fetch."""
ClientFactory = Callable[[httpx.AsyncBaseTransport], httpx.AsyncClient]
"""Builds the client for one fetch; it must send through the transport it is given."""

GUARD_EXTENSION = "warden_ssrf_guard"
"""Response extension set by ``GuardedTransport``; ``stream`` refuses a response without it."""

_T = TypeVar("_T")
_CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")


@dataclass(frozen=True)
class FetchedBody:
    """A whole (small) body fetched through the guard, and where it finally came from."""

    url: str
    status: int
    content_type: str | None
    content: bytes


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the event loop's ``getaddrinfo``: its addresses, in order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    """httpcore's verifying context (certifi's CA bundle), built once on first use."""
    return httpcore.default_ssl_context()


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the addresses pinned for a host name, never to the name itself.

    Unix sockets stay refused (the base class raises ``NotImplementedError``).
    """

    def __init__(self, policy: SsrfPolicy, inner: httpcore.AsyncNetworkBackend) -> None:
        """Wrap ``inner``, the backend that opens the real sockets."""
        self._policy = policy
        self._inner = inner
        self.pins: dict[str, tuple[IPAddress, ...]] = {}

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to the first pinned address of ``host`` that answers; TLS comes later."""
        name = host.lower().removesuffix(".")
        addresses = self.pins.get(name)
        if not addresses:
            raise SsrfError(UNREACHABLE, f"{name} was not resolved by the guard")
        failure: Exception = SsrfError(UNREACHABLE, f"{name}: no address answered")
        for address in addresses:
            check_address(address, self._policy, name)
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def sleep(self, seconds: float) -> None:
        """Sleep as the inner backend does."""
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that checks each request's URL and connects to pinned addresses.

    Hosts are resolved once per transport (a transport lives for one fetch). httpx 0.28's
    ``AsyncHTTPTransport`` does the HTTP work; its connection pool is replaced by one
    whose network backend pins addresses (httpx has no public hook for a backend).
    """

    def __init__(
        self,
        policy: SsrfPolicy,
        *,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        """Guard with ``policy``; the defaults resolve, verify and connect for real."""
        self._policy = policy
        self._resolver = resolver or system_resolver
        self._lock = asyncio.Lock()
        self._backend = _PinnedBackend(policy, network_backend or httpcore.AnyIOBackend())
        context = ssl_context or _default_ssl_context()
        self._inner = httpx.AsyncHTTPTransport(verify=context, trust_env=False)
        self._inner._pool = httpcore.AsyncConnectionPool(
            ssl_context=context, max_connections=8, network_backend=self._backend
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Check the URL, pin its host's addresses, then send; mark the response guarded."""
        url = check_url(request.url, self._policy)
        await self._pin(host_key(request.url), url)
        response = await self._inner.handle_async_request(request)
        response.extensions = {**response.extensions, GUARD_EXTENSION: True}
        return response

    async def aclose(self) -> None:
        """Close the pool and its connections."""
        await self._inner.aclose()

    async def _pin(self, key: str, url: httpx.URL) -> None:
        """Resolve ``url``'s host unless pinned already, validate every address, pin them."""
        async with self._lock:
            if key in self._backend.pins:
                return
            host = host_key(url)
            literal = literal_address(host)
            port = url.port or DEFAULT_PORTS[url.scheme]
            if literal is not None:
                addresses: tuple[IPAddress, ...] = (literal,)
            else:
                addresses = await self._resolve(host, port)
            for address in addresses:
                check_address(address, self._policy, host)
            self._backend.pins[key] = addresses

    async def _resolve(self, host: str, port: int) -> tuple[IPAddress, ...]:
        """Ask the resolver once; refuse a name that resolves to nothing usable."""
        try:
            answers = await self._resolver(host, port)
            addresses = tuple(ipaddress.ip_address(answer) for answer in answers)
        except (OSError, ValueError) as exc:
            raise SsrfError(NOT_FOUND, f"{host}: {exc}") from exc
        if not addresses:
            raise SsrfError(NOT_FOUND, f"{host}: no address")
        return addresses


def default_client(transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
    """A plain client over the guarded transport: no redirects, no environment proxies."""
    return httpx.AsyncClient(
        transport=transport, timeout=DEFAULT_TIMEOUT, follow_redirects=False, trust_env=False
    )


def resilient_factory(
    breakers: Breakers,
    retry: RetryPolicy | None = None,
    *,
    on_attempt: AttemptCallback | None = None,
) -> ClientFactory:
    """A client factory that puts ``ResilientTransport`` (breaker, retries) outside the guard."""

    def build(transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
        """Wrap the guarded transport in the resilient one."""
        resilient = ResilientTransport(breakers, retry, transport, on_attempt=on_attempt)
        return default_client(resilient)

    return build


class StreamedBody:
    """The final answer of a guarded fetch: metadata now, the body as chunks on demand.

    Iterate it (``async for chunk in body``) to receive the raw bytes; more than
    ``max_bytes`` in all, or the deadline passing, raises ``SsrfError``.
    """

    def __init__(self, response: httpx.Response, policy: SsrfPolicy, deadline: float) -> None:
        """Wrap the accepted ``response``; the deadline is on the event loop's clock."""
        self._response = response
        self._policy = policy
        self._deadline = deadline
        self.url = str(response.url)
        self.status = response.status_code
        self.content_type: str | None = response.headers.get("content-type")
        self.received = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Yield the body's chunks as they arrive, within the size and time limits."""
        chunks = self._response.aiter_raw()
        while True:
            try:
                chunk = await _within(self._deadline, anext(chunks), self._response.url)
            except StopAsyncIteration:
                return
            self.received += len(chunk)
            if self.received > self._policy.max_bytes:
                host = host_key(self._response.url)
                raise SsrfError(TOO_LARGE, f"{host}: over {self._policy.max_bytes} bytes")
            yield chunk

    async def read(self) -> bytes:
        """The whole body (for small bodies only: it is held in memory)."""
        return b"".join([chunk async for chunk in self])


async def _within(deadline: float, awaitable: Awaitable[_T], url: httpx.URL) -> _T:
    """Await ``awaitable`` before the deadline, or raise ``SsrfError`` (too slow)."""
    try:
        async with asyncio.timeout_at(deadline):
            return await awaitable
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise SsrfError(TOO_SLOW, f"{host_key(url)}: deadline passed") from exc


@contextlib.asynccontextmanager
async def stream(
    url: str,
    policy: SsrfPolicy,
    *,
    client_factory: ClientFactory | None = None,
    resolver: Resolver | None = None,
    ssl_context: ssl.SSLContext | None = None,
    network_backend: httpcore.AsyncNetworkBackend | None = None,
) -> AsyncIterator[StreamedBody]:
    """Fetch ``url`` through the guard; yield the final 2xx answer as a ``StreamedBody``.

    Raises ``SsrfError`` for anything the policy refuses, a non-2xx final answer, an
    encoded body, a body over ``max_bytes`` or the deadline; transport failures raise
    what the client raises (``httpx.HTTPError``, or ``DeliveryError`` when resilient).
    """
    deadline = asyncio.get_running_loop().time() + policy.timeout
    try:
        target = check_url(url, policy)
        transport = GuardedTransport(
            policy, resolver=resolver, ssl_context=ssl_context, network_backend=network_backend
        )
        async with (client_factory or default_client)(transport) as client:
            response = await _follow(client, target, policy, deadline)
            try:
                yield StreamedBody(response, policy, deadline)
            finally:
                await response.aclose()
    except SsrfError as exc:
        log.info("guarded fetch refused: %s", exc.detail)
        raise


async def fetch(
    url: str,
    policy: SsrfPolicy,
    *,
    client_factory: ClientFactory | None = None,
    resolver: Resolver | None = None,
    ssl_context: ssl.SSLContext | None = None,
    network_backend: httpcore.AsyncNetworkBackend | None = None,
) -> FetchedBody:
    """Fetch a small body through the guard (see ``stream``) and return it whole."""
    async with stream(
        url,
        policy,
        client_factory=client_factory,
        resolver=resolver,
        ssl_context=ssl_context,
        network_backend=network_backend,
    ) as body:
        content = await body.read()
    return FetchedBody(body.url, body.status, body.content_type, content)


async def _follow(
    client: httpx.AsyncClient, target: httpx.URL, policy: SsrfPolicy, deadline: float
) -> httpx.Response:
    """Send GETs, following redirects by hand and checking each target; return the last."""
    origin = target
    for _hop in range(policy.max_redirects + 1):
        request = client.build_request("GET", target, headers={"Accept-Encoding": "identity"})
        if (target.scheme, target.host, target.port) != (origin.scheme, origin.host, origin.port):
            for name in _CREDENTIAL_HEADERS:
                request.headers.pop(name, None)
        response = await _within(deadline, client.send(request, stream=True), target)
        if response.extensions.get(GUARD_EXTENSION) is not True:
            await response.aclose()
            raise RuntimeError("the client_factory's client bypassed the SSRF guard's transport")
        if not response.has_redirect_location:
            return await _accepted(response, policy)
        await response.aclose()
        target = _redirect_target(target, response.headers["location"], policy)
    raise SsrfError("that link redirects too many times", f"over {policy.max_redirects}")


def _redirect_target(current: httpx.URL, location: str, policy: SsrfPolicy) -> httpx.URL:
    """The checked URL a ``Location`` header points to, relative to ``current``."""
    try:
        joined = current.join(location)
    except httpx.InvalidURL:  # its message may quote the URL: not chained, not logged
        raise SsrfError(INVALID, f"{host_key(current)}: bad redirect location") from None
    return check_url(joined, policy)


async def _accepted(response: httpx.Response, policy: SsrfPolicy) -> httpx.Response:
    """Return ``response`` if its status, encoding and declared length are acceptable."""
    host = host_key(response.url)
    status = response.status_code
    encoding = response.headers.get("content-encoding", "identity").lower()
    declared = response.headers.get("content-length", "")
    problem: SsrfError | None = None
    if not 200 <= status < 300:
        reason = f"that link answered with an error (status {status})"
        problem = SsrfError(reason, f"{host}: status {status}", status=status)
    elif encoding != "identity":
        problem = SsrfError("that link sent encoded content", f"{host}: {encoding}")
    elif declared.isdigit() and int(declared) > policy.max_bytes:
        problem = SsrfError(TOO_LARGE, f"{host}: declared {declared} bytes")
    if problem is not None:
        await response.aclose()
        raise problem
    return response
