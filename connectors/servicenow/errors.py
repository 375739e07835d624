"""ServiceNow's error envelope, turned into Warden's typed errors.

The Table API answers a failure with ``{"error": {"message", "detail"}, "status":
"failure"}``. The outcome comes from the one classification table (``core.outcomes``); a
429's delay is ``Retry-After``, or else the time left until ``X-RateLimit-Reset`` (epoch
seconds, or a UTC date-time). ``str(error)`` is for operators; ``user_message`` is safe to
show in Teams.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Self

import httpx

from connectors.http import server_delay
from core.errors import DeliveryError, Outcome
from core.outcomes import classify_status

MAX_MESSAGE = 300
"""Longest body text kept as the message when the envelope has none."""


class ServiceNowError(DeliveryError):
    """A call to ServiceNow failed; ``message`` and ``detail`` are the service's words."""

    user_message = "ServiceNow could not complete the request."

    def __init__(
        self,
        message: str,
        *,
        detail: str = "",
        status: int | None = None,
        outcome: Outcome = Outcome.FAIL,
        retry_after: float | None = None,
        attempted: bool = True,
    ) -> None:
        """Describe the failure; the exception text joins every part for the operator."""
        self.message = message
        self.detail = detail
        head = "ServiceNow" + (f" {status}" if status is not None else "")
        tail = f" ({detail})" if detail else ""
        super().__init__(f"{head}: {message}{tail}", outcome=outcome, status=status)
        self.retry_after, self.attempted = retry_after, attempted

    @classmethod
    def from_delivery(cls, error: DeliveryError) -> Self:
        """This service's form of a transport failure of the resilient HTTP layer."""
        made = cls(str(error), status=error.status, outcome=error.outcome)
        made.retry_after, made.attempted = error.retry_after, error.attempted
        return made


class ServiceNowRefused(ServiceNowError):
    """400/401/403 (or another 4xx): the request was refused, and the service said why."""

    @property
    def user_message(self) -> str:  # type: ignore[override]
        """What a responder may read: a hint about access, or the validation message."""
        if self.status in (401, 403):
            return (
                "Warden's ServiceNow account is not allowed to do this; ask an administrator "
                "to grant it access to the table."
            )
        return f"ServiceNow refused the request: {self.message}"


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
    if not message:
        message = response.text.strip()[:MAX_MESSAGE] or (
            response.reason_phrase or f"HTTP {response.status_code}"
        )
    return message, detail


def error_from_response(response: httpx.Response) -> ServiceNowError:
    """The typed error for an answer with a failure status (the body must have been read).

    404 → ``ServiceNowNotFound``; 429 → ``ServiceNowThrottled``; 5xx →
    ``ServiceNowUnavailable``; any other → ``ServiceNowRefused``.
    """
    status = response.status_code
    kind: type[ServiceNowError] = ServiceNowRefused
    if status == 404:
        kind = ServiceNowNotFound
    elif status == 429:
        kind = ServiceNowThrottled
    elif status >= 500:
        kind = ServiceNowUnavailable
    message, detail = envelope(response)
    return kind(
        message,
        detail=detail,
        status=status,
        outcome=classify_status(status),
        retry_after=rate_limit_delay(response.headers),
    )


def invalid_answer(message: str) -> ServiceNowUnavailable:
    """The error for a 2xx answer Warden cannot read (not JSON, not the envelope's shape)."""
    return ServiceNowUnavailable(message, outcome=Outcome.RETRY)
