"""The classification table: an outbound call's failure → what to do about it.

One table for every connector: status codes and transport failures map to an ``Outcome``
(retry, rate-limited, fail, gone). ``Retry-After`` is read in either of its forms.
A TLS handshake refused over a certificate fails at once: retrying cannot fix it.
"""

from __future__ import annotations

import re
import ssl
import time
from email.utils import parsedate_to_datetime

from core.errors import Outcome

_STATUS_OUTCOMES: dict[int, Outcome] = {
    400: Outcome.FAIL,
    401: Outcome.RETRY,
    403: Outcome.GONE,
    404: Outcome.GONE,
    408: Outcome.RETRY,
    409: Outcome.RETRY,
    410: Outcome.GONE,
    412: Outcome.RETRY,
    413: Outcome.FAIL,
    415: Outcome.FAIL,
    422: Outcome.FAIL,
    425: Outcome.RETRY,
    429: Outcome.RATE_LIMITED,
    500: Outcome.RETRY,
    502: Outcome.RETRY,
    503: Outcome.RATE_LIMITED,
    504: Outcome.RETRY,
}


def classify_status(status: int) -> Outcome:
    """What to do after an answer with HTTP ``status`` (a failure status)."""
    if status in _STATUS_OUTCOMES:
        return _STATUS_OUTCOMES[status]
    return Outcome.RETRY if status >= 500 else Outcome.FAIL


_RESEND_NOW = frozenset({408, 425, 429, 500, 502, 503, 504})


def resend_in_call(status: int) -> bool:
    """True when the same request, sent again within the call, may succeed.

    Narrower than ``RETRY``: a 401 (same token), 409 or 412 (same etag) needs something
    to change first — a new token, a re-read — so the outbox retries those, not the transport.
    """
    return status in _RESEND_NOW


def classify_transport(exc: BaseException) -> Outcome:
    """What to do after a call that got no answer: retry (timeout, reset, refused), but
    fail at once when TLS refused the handshake (``tls_failure``: a certificate problem)."""
    return Outcome.FAIL if tls_failure(exc) else Outcome.RETRY


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


_TLS_REFUSAL = re.compile(
    r"ALERT|CERTIFICATE|VERIFY|PEER_DID_NOT_RETURN|NO_SHARED_CIPHER|UNSUPPORTED_PROTOCOL"
    r"|NO_PROTOCOLS_AVAILABLE|WRONG_VERSION_NUMBER"
)


def tls_failure(exc: BaseException) -> str | None:
    """The reason of a TLS handshake the peer or Warden refused, found in ``exc``'s chain.

    A refused certificate, a TLS alert or a failed verification is configuration: sending
    again cannot change it. None when there is none, and for TLS that merely stopped (an
    EOF, a reset, a read cut short by a timeout), which a retry may fix.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current.verify_message or current.reason or "certificate verify failed"
        reason = getattr(current, "reason", None)
        if isinstance(current, ssl.SSLError) and reason and _TLS_REFUSAL.search(reason):
            return str(reason)
        current = current.__cause__ or current.__context__
    return None
