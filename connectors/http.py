"""The one resilient outbound HTTP layer: every httpx-based connector sends through it.

``ResilientTransport`` wraps an httpx transport. For each request it:

1. asks the host's circuit breaker (``scheme://host:port``) first; an open breaker raises
   ``DeliveryError(outcome=RETRY, retry_after=..., attempted=False)`` and nothing is sent;
2. applies the retry matrix: GET, HEAD, OPTIONS, PUT and DELETE may be sent again; POST
   and PATCH only with an ``Idempotency-Key`` header or ``extensions={"warden_idempotent":
   True}`` (a create made safe by a correlation id); anything else, and any request whose
   body is a stream (it cannot be replayed), is sent once;
3. retries with stamina (jittered exponential backoff, ``RetryPolicy.attempts``, an overall
   deadline of ``RetryPolicy.timeout`` seconds) what ``core.outcomes`` classifies as RETRY
   or RATE_LIMITED, and calls that got no answer (timeouts, resets, refusals), waiting
   the delay the server names (``x-ms-retry-after-ms``, ``Retry-After``) instead when set;
4. records every attempt on the breaker: no answer or a 5xx is a failure, any other
   answer (4xx included, 429 too, and a TLS alert refusing the handshake) shows the
   host is up.

The deadline is hard: each attempt runs under what is left of it, a retry is scheduled only
when its wait ends before it, and a ``Retry-After`` longer than what is left is not waited
for. Retries also stop as soon as the host's breaker is no longer closed.

How a call ends (the choice this layer makes):

* an answer always comes back as the **last response**, whatever its status: a success,
  a FAIL or GONE answer (not retried), or a retryable answer once attempts, deadline or
  breaker say stop. Each connector maps the response with its vendor's error envelope
  (``connectors/<name>/errors.py``), which only it knows, and ``DeliveryError.retry_after``
  can be filled from the same headers. Responses of attempts that are retried are closed.
* no answer at all (after the retries allowed) raises ``DeliveryError`` with the outcome of
  ``classify_transport``, no status, chained to the httpx exception.

Mutual TLS: ``resilient_client(client_cert=…)`` presents a client certificate
(``core.tls.ClientCertificate``, from settings); ``client_tls`` builds the same SSL context
for a transport of another kind, e.g. ``connectors.ssrf``'s pinned ``GuardedTransport``
(its ``ssl_context``). A handshake the server refuses (no certificate, an untrusted one) is
not retried: ``classify_transport`` makes it FAIL, and the reason names TLS.

The deadline covers the answer's headers; the client reads the body under its own
timeouts. Every send is reported to the optional ``on_attempt`` callback (metrics); every
retry is logged once at INFO: method, host, path (no query), status, attempt, wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
import stamina

from core.breaker import Breakers, BreakerState, CircuitBreaker, CircuitOpen
from core.errors import DeliveryError, Outcome
from core.outcomes import (
    classify_status,
    classify_transport,
    parse_retry_after,
    resend_in_call,
    tls_failure,
)
from core.tls import ClientCertificate

log = logging.getLogger(__name__)

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
"""A POST or PATCH carrying this header may be retried."""

IDEMPOTENT_EXTENSION = "warden_idempotent"
"""Request extension: ``extensions={IDEMPOTENT_EXTENSION: True}`` makes a POST retryable."""

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
"""Per-operation timeouts of ``resilient_client``: 5 s to connect, 10 s for the rest."""

DEFAULT_LIMITS = httpx.Limits(max_connections=50, max_keepalive_connections=10, keepalive_expiry=15)
"""Connection pool of ``resilient_client``: per client, all hosts together."""

_REPLAYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_KEYED_METHODS = frozenset({"POST", "PATCH"})
_DURATION = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)$")
_RETRYABLE_OUTCOMES = frozenset({Outcome.RETRY, Outcome.RATE_LIMITED})
_NO_ANSWER: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
    TimeoutError,
    ssl.SSLError,  # a TLS 1.3 alert read after the handshake escapes httpcore unmapped
)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: at most ``attempts`` sends within ``timeout`` seconds in all.

    Stamina's backoff after attempt n is ``min(wait_max, wait_initial * 2 ** (n - 1) + j)``,
    j random in ``[0, wait_jitter]``. A delay the server names replaces it.
    """

    attempts: int = 4
    timeout: float = 30.0
    wait_initial: float = 0.2
    wait_max: float = 10.0
    wait_jitter: float = 0.5

    def __post_init__(self) -> None:
        """Refuse a policy that could never send or never stop."""
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive (seconds)")


@dataclass(frozen=True)
class AttemptReport:
    """One send as the ``on_attempt`` callback sees it (no header, body or query)."""

    host: str
    method: str
    attempt: int
    duration: float
    status: int | None = None
    error: str | None = None


AttemptCallback = Callable[[AttemptReport], None]
"""Called after every send; it must be quick (an exception is logged and ignored)."""


class _Failed(Exception):
    """An attempt whose result may deserve another try; carried through stamina."""

    def __init__(
        self,
        label: str,
        reason: str,
        *,
        outcome: Outcome,
        response: httpx.Response | None = None,
        cause: Exception | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{label}: {reason}")
        self.reason = reason
        self.outcome = outcome
        self.response = response
        self.cause = cause
        self.retry_after = retry_after
        self.final = outcome not in _RETRYABLE_OUTCOMES


@dataclass
class _Call:
    """One request's journey through its attempts."""

    request: httpx.Request
    host: str
    breaker: CircuitBreaker
    deadline: float
    last: _Failed | None = None
    next_wait: float = 0.0
    ended_at: float = 0.0
    attempts: int = 0

    @property
    def label(self) -> str:
        """Method, host and path, without the query string (safe to log)."""
        return f"{self.request.method} {self.host}{self.request.url.path}"

    def remaining(self) -> float:
        """Seconds left before the deadline."""
        return self.deadline - time.monotonic()

    async def discard(self) -> None:
        """Close the response of the last failed attempt, which is being retried."""
        if self.last is not None and self.last.response is not None:
            response, self.last.response = self.last.response, None
            await response.aclose()


def host_key(url: httpx.URL) -> str:
    """The breaker key of a URL: ``scheme://host:port`` (default ports spelled out)."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = url.port or {"https": 443, "http": 80}.get(url.scheme, 0)
    return f"{url.scheme}://{host}:{port}"


def is_replayable(request: httpx.Request) -> bool:
    """Tell whether the retry matrix allows sending ``request`` more than once."""
    if not isinstance(request.stream, httpx.ByteStream):
        return False
    method = request.method.upper()
    if method in _REPLAYABLE_METHODS:
        return True
    if method in _KEYED_METHODS:
        keyed = IDEMPOTENCY_KEY_HEADER in request.headers
        return keyed or request.extensions.get(IDEMPOTENT_EXTENSION) is True
    return False


def server_delay(headers: httpx.Headers) -> float | None:
    """The seconds the server asked to wait (``x-ms-retry-after-ms``, then ``Retry-After``,
    then, once ``x-ms-user-quota-remaining`` is 0, ``x-ms-user-quota-resets-after``)."""
    milliseconds = headers.get("x-ms-retry-after-ms") or headers.get("retry-after-ms")
    if milliseconds is not None:
        with contextlib.suppress(ValueError):
            return max(0.0, float(milliseconds) / 1000)
    named = parse_retry_after(headers.get("Retry-After"))
    if named is None and headers.get("x-ms-user-quota-remaining", "").strip() == "0":
        return parse_duration(headers.get("x-ms-user-quota-resets-after"))
    return named


def parse_duration(value: str | None) -> float | None:
    """Seconds in a ``[d.]hh:mm:ss[.fff]`` duration (Resource Graph's quota reset); None."""
    found = _DURATION.match((value or "").strip())
    if found is None:
        return None
    days, hours, minutes, seconds = found.groups()
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return max(0.0, total)


class ResilientTransport(httpx.AsyncBaseTransport):
    """An httpx transport that adds the breaker, the retry matrix and classified retries."""

    def __init__(
        self,
        breakers: Breakers,
        policy: RetryPolicy | None = None,
        inner: httpx.AsyncBaseTransport | None = None,
        *,
        on_attempt: AttemptCallback | None = None,
    ) -> None:
        """Wrap ``inner`` (a new ``httpx.AsyncHTTPTransport`` unless given)."""
        self._breakers = breakers
        self._policy = policy or RetryPolicy()
        self._inner = inner or httpx.AsyncHTTPTransport()
        self._on_attempt = on_attempt

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` as the module docstring describes; return the last response."""
        host = host_key(request.url)
        deadline = time.monotonic() + self._policy.timeout
        call = _Call(request, host, self._breakers.for_host(host), deadline)
        try:
            if is_replayable(request):
                return await self._with_retries(call)
            return await self._attempt(call, 1)
        except _Failed as failed:
            return self._give_up(call, failed)
        finally:
            await call.discard()

    async def aclose(self) -> None:
        """Close the inner transport and its connections."""
        await self._inner.aclose()

    async def _with_retries(self, call: _Call) -> httpx.Response:
        """Run the attempts under stamina; ``_Failed`` escapes when retrying stops."""
        policy = self._policy
        async for attempt in stamina.retry_context(
            on=lambda exc: self._backoff(call, exc),
            attempts=policy.attempts,
            timeout=policy.timeout,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
            wait_jitter=policy.wait_jitter,
        ):
            with attempt:
                call.next_wait = attempt.next_wait
                return await self._attempt(call, attempt.num)
        raise AssertionError("unreachable: stamina re-raises the last failure")

    def _backoff(self, call: _Call, exc: Exception) -> bool | float:
        """Stamina's hook: False to stop, a float to wait that long, True for the backoff."""
        if not isinstance(exc, _Failed) or exc.final:
            return False
        if call.breaker.state is not BreakerState.CLOSED:
            return False
        remaining = call.remaining()
        if exc.retry_after is not None:
            return exc.retry_after if exc.retry_after < remaining else False
        return call.next_wait + self._policy.wait_jitter < remaining

    async def _attempt(self, call: _Call, number: int) -> httpx.Response:
        """Send once, after the breaker and the deadline allowed it; raise ``_Failed``."""
        self._admit(call, number)
        await call.discard()
        if number > 1:
            self._log_retry(call, number)
        started = time.monotonic()
        call.attempts = number
        try:
            response = await self._send(call)
        except _NO_ANSWER as exc:
            self._report(call, number, started, error=type(exc).__name__)
            call.last = self._no_answer(call, exc)
            raise call.last from exc
        self._report(call, number, started, status=response.status_code)
        if response.status_code < 400:
            return response
        call.last = self._refused(call, response)
        raise call.last

    async def _send(self, call: _Call) -> httpx.Response:
        """One send under what is left of the deadline, recorded on the host's breaker."""
        try:
            async with asyncio.timeout(call.remaining()):
                response = await self._inner.handle_async_request(call.request)
        except _NO_ANSWER as exc:
            # A refused TLS handshake is an answer, like a 4xx: the host is up.
            call.breaker.record(tls_failure(exc) is not None)
            raise
        except BaseException:
            # Cancelled or broken before an answer: an unfinished probe must not hold the
            # half-open breaker's only slot, so it counts as failed (the breaker reopens).
            if call.breaker.state is BreakerState.HALF_OPEN:
                call.breaker.record(False)
            raise
        call.breaker.record(response.status_code < 500)
        return response

    def _admit(self, call: _Call, number: int) -> None:
        """Raise unless the breaker and the deadline let attempt ``number`` go out."""
        try:
            call.breaker.before_call()
        except CircuitOpen as exc:
            if call.last is None:
                raise DeliveryError(
                    f"{call.label}: not sent, {exc}",
                    outcome=Outcome.RETRY,
                    retry_after=exc.retry_after,
                    attempted=False,
                ) from exc
            call.last.final = True
            raise call.last from exc
        if number > 1 and call.remaining() <= 0 and call.last is not None:
            call.last.final = True
            raise call.last

    def _no_answer(self, call: _Call, exc: Exception) -> _Failed:
        """The failure of an attempt that got no answer."""
        tls = tls_failure(exc)
        reason = f"TLS refused ({tls})" if tls else f"no answer ({type(exc).__name__})"
        return _Failed(call.label, reason, outcome=classify_transport(exc), cause=exc)

    def _refused(self, call: _Call, response: httpx.Response) -> _Failed:
        """The failure of an attempt answered with a 4xx or 5xx status."""
        status = response.status_code
        failed = _Failed(
            call.label,
            f"status {status}",
            outcome=classify_status(status),
            response=response,
            retry_after=server_delay(response.headers),
        )
        failed.final = failed.final or not resend_in_call(status)
        return failed

    def _give_up(self, call: _Call, failed: _Failed) -> httpx.Response:
        """Hand back the last response, or raise ``DeliveryError`` when there was none."""
        if failed.response is not None:
            response, failed.response = failed.response, None
            return response
        raise DeliveryError(
            f"{failed} after {call.attempts} attempt(s)",
            outcome=failed.outcome,
            retry_after=failed.retry_after,
        ) from failed.cause

    def _report(
        self,
        call: _Call,
        number: int,
        started: float,
        *,
        status: int | None = None,
        error: str | None = None,
    ) -> None:
        """Tell the ``on_attempt`` callback about one send."""
        call.ended_at = time.monotonic()
        if self._on_attempt is None:
            return
        method = call.request.method
        duration = call.ended_at - started
        try:
            self._on_attempt(AttemptReport(call.host, method, number, duration, status, error))
        except Exception:  # metrics must never break a delivery
            log.exception("on_attempt callback failed for %s", call.label)

    def _log_retry(self, call: _Call, number: int) -> None:
        """Log the retry of the previous attempt (one line, nothing secret)."""
        reason = call.last.reason if call.last is not None else "nothing"
        waited = time.monotonic() - call.ended_at
        log.info(
            "retrying %s after %s (attempt %d failed, waited %.2fs)",
            call.label,
            reason,
            number - 1,
            waited,
        )


def resilient_client(
    *,
    breakers: Breakers,
    policy: RetryPolicy | None = None,
    base_url: str = "",
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    verify: ssl.SSLContext | bool = True,
    headers: Mapping[str, str] | None = None,
    limits: httpx.Limits = DEFAULT_LIMITS,
    on_attempt: AttemptCallback | None = None,
    client_cert: ClientCertificate | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` that sends through a ``ResilientTransport``.

    Timeouts are explicit, the pool is bounded by ``limits``, redirects are not followed.
    With ``client_cert`` every connection presents that certificate (see ``client_tls``).
    The caller owns the client: close it (``async with`` or ``aclose``).
    """
    inner = httpx.AsyncHTTPTransport(verify=client_tls(verify, client_cert), limits=limits)
    transport = ResilientTransport(breakers, policy, inner, on_attempt=on_attempt)
    return httpx.AsyncClient(
        base_url=base_url, timeout=timeout, headers=headers, transport=transport
    )


def client_tls(
    verify: ssl.SSLContext | bool = True, client_cert: ClientCertificate | None = None
) -> ssl.SSLContext | bool:
    """What to give httpx as ``verify`` so that ``client_cert`` is presented.

    Without a certificate, ``verify`` itself. With one, an SSL context holding it: the
    given context (changed in place), or a new one for ``True`` (certifi's CAs) or
    ``False`` (no server verification).
    """
    if client_cert is None:
        return verify
    if isinstance(verify, ssl.SSLContext):
        context = verify
    else:
        context = httpx.create_ssl_context(verify=verify)
    return client_cert.load_into(context)
