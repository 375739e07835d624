"""Jira's error envelope, turned into Warden's typed errors.

Jira answers a failure with ``{"errorMessages": [...], "errors": {"field": "message"}}``.
The outcome comes from the one classification table (``core.outcomes``); a 429's delay is
``Retry-After``. ``str(error)`` is for operators; ``user_message`` is safe to show in Teams
and, for a refused request (a JQL error above all), carries the service's own words.
"""

from __future__ import annotations

from typing import Self

import httpx

from connectors.http import server_delay
from core.errors import DeliveryError, Outcome
from core.outcomes import classify_status

MAX_MESSAGE = 300
"""Longest body text kept as the message when the envelope has none."""


class JsmError(DeliveryError):
    """A call to Jira failed; ``message`` is the service's words (every message joined)."""

    user_message = "Jira Service Management could not complete the request."

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        outcome: Outcome = Outcome.FAIL,
        retry_after: float | None = None,
        attempted: bool = True,
    ) -> None:
        """Describe the failure; the exception text names the status for the operator."""
        self.message = message
        head = "Jira" + (f" {status}" if status is not None else "")
        super().__init__(f"{head}: {message}", outcome=outcome, status=status)
        self.retry_after, self.attempted = retry_after, attempted

    @classmethod
    def from_delivery(cls, error: DeliveryError) -> Self:
        """This service's form of a transport failure of the resilient HTTP layer."""
        made = cls(str(error), status=error.status, outcome=error.outcome)
        made.retry_after, made.attempted = error.retry_after, error.attempted
        return made


class JsmRefused(JsmError):
    """400/401/403 (or another 4xx): refused, and the service said why."""

    @property
    def user_message(self) -> str:  # type: ignore[override]
        """A hint about access, or the service's own message (a JQL error, a bad field)."""
        if self.status in (401, 403):
            return (
                "Warden's Jira account is not allowed to do this; ask an administrator to give "
                "it access to the project."
            )
        return f"Jira refused the request: {self.message}"


class JsmNotFound(JsmError):
    """404: no such issue, or the account may not see it (Jira answers both alike)."""

    user_message = "Jira has no such issue that Warden can read."


class JsmThrottled(JsmError):
    """429: over the rate limit; ``retry_after`` is when to try again."""

    user_message = "Jira is busy; Warden will try again shortly."


class JsmUnavailable(JsmError):
    """5xx after the retries allowed, no answer at all, or an answer Warden cannot read."""

    user_message = "Jira cannot be reached right now; Warden will try again."


def envelope(response: httpx.Response) -> str:
    """Every message of a failure body (``errorMessages`` then ``errors``), or a stand-in."""
    try:
        body = response.json()
    except ValueError:
        body = None
    parts: list[str] = []
    if isinstance(body, dict):
        messages = body.get("errorMessages")
        if isinstance(messages, list):
            parts += [str(m) for m in messages if str(m).strip()]
        errors = body.get("errors")
        if isinstance(errors, dict):
            parts += [f"{name}: {text}" for name, text in errors.items()]
    if parts:
        return "; ".join(parts)
    return response.text.strip()[:MAX_MESSAGE] or (
        response.reason_phrase or f"HTTP {response.status_code}"
    )


def error_from_response(response: httpx.Response) -> JsmError:
    """The typed error for an answer with a failure status (the body must have been read)."""
    status = response.status_code
    kind: type[JsmError] = JsmRefused
    if status == 404:
        kind = JsmNotFound
    elif status == 429:
        kind = JsmThrottled
    elif status >= 500:
        kind = JsmUnavailable
    return kind(
        envelope(response),
        status=status,
        outcome=classify_status(status),
        retry_after=server_delay(response.headers),
    )


def invalid_answer(message: str) -> JsmUnavailable:
    """The error for a 2xx answer Warden cannot read (not JSON, not the expected shape)."""
    return JsmUnavailable(message, outcome=Outcome.RETRY)
