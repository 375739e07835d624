"""ServiceNow's error envelope, turned into Warden's typed errors.

The Table API answers a failure with ``{"error": {"message", "detail"}, "status":
"failure"}``. The outcome comes from the one classification table (``core.outcomes``); a
429's delay is ``Retry-After``, or else the time left until ``X-RateLimit-Reset`` (epoch
seconds, or a UTC date-time). ``str(error)`` is for operators; ``user_message`` is safe to
show in Teams. What every ITSM connector's errors share is in ``connectors.itsm_errors``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from connectors.http import server_delay
from connectors.itsm_errors import ItsmErrorKinds, ItsmRefused, ItsmServiceError, body_text
from core.errors import Outcome


class ServiceNowError(ItsmServiceError):
    """A call to ServiceNow failed; ``message`` and ``detail`` are the service's words."""

    service = "ServiceNow"
    user_message = "ServiceNow could not complete the request."


class ServiceNowRefused(ItsmRefused, ServiceNowError):  # type: ignore[override]  # the property wins
    """400/401/403 (or another 4xx): the request was refused, and the service said why."""

    access_hint = (
        "Warden's ServiceNow account is not allowed to do this; ask an administrator "
        "to grant it access to the table."
    )


class ServiceNowNotFound(ServiceNowError):
    """404: no such record (or an ACL hides it: ServiceNow answers both alike)."""

    user_message = "ServiceNow has no such record that Warden can read."


class ServiceNowThrottled(ServiceNowError):
    """429: a rate-limit rule was exceeded; ``retry_after`` is when to try again."""

    user_message = "ServiceNow is busy; Warden will try again shortly."


class ServiceNowUnavailable(ServiceNowError):
    """5xx after the retries allowed, no answer at all, or an answer Warden cannot read."""

    user_message = "ServiceNow cannot be reached right now; Warden will try again."


def rate_limit_delay(headers: httpx.Headers, *, now: float | None = None) -> float | None:
    """Seconds to wait: ``Retry-After``, else until ``X-RateLimit-Reset``; None if neither."""
    delay = server_delay(headers)
    if delay is not None:
        return delay
    reset = (headers.get("X-RateLimit-Reset") or "").strip()
    if not reset:
        return None
    current = time.time() if now is None else now
    when: float | None = None
    if reset.isdigit():
        number = float(reset)
        when = number if number > 1e9 else current + number
    else:
        when = _reset_time(reset)
    return None if when is None else max(0.0, when - current)


def _reset_time(text: str) -> float | None:
    """Epoch seconds of a reset written as a UTC date-time (ISO, Glide or HTTP date)."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def envelope(response: httpx.Response) -> tuple[str, str]:
    """The ``message`` and ``detail`` of a failure body, or the best stand-ins."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    fields = error if isinstance(error, dict) else {}
    message, detail = str(fields.get("message") or ""), str(fields.get("detail") or "")
    return message or body_text(response), detail


ERRORS = ItsmErrorKinds[ServiceNowError](
    base=ServiceNowError,
    refused=ServiceNowRefused,
    not_found=ServiceNowNotFound,
    throttled=ServiceNowThrottled,
    unavailable=ServiceNowUnavailable,
    read=envelope,
    delay=rate_limit_delay,
)
"""ServiceNow's error family: what a failure becomes."""


def error_from_response(response: httpx.Response) -> ServiceNowError:
    """The typed error for an answer with a failure status (the body must have been read).

    404 → ``ServiceNowNotFound``; 429 → ``ServiceNowThrottled``; 5xx →
    ``ServiceNowUnavailable``; any other → ``ServiceNowRefused``.
    """
    return ERRORS.from_response(response)


def invalid_answer(message: str) -> ServiceNowUnavailable:
    """The error for a 2xx answer Warden cannot read (not JSON, not the envelope's shape)."""
    return ServiceNowUnavailable(message, outcome=Outcome.RETRY)
