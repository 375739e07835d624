"""The classification table: an outbound call's failure → what to do about it.

One table for every connector: status codes and transport failures map to an ``Outcome``
(retry, rate-limited, fail, gone). ``Retry-After`` is read in either of its forms.
"""

from __future__ import annotations

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
    """What to do after a call that got no answer (timeout, reset, refused): retry."""
    del exc
    return Outcome.RETRY


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
