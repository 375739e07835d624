"""Jira's error envelope, turned into Warden's typed errors.

Jira answers a failure with ``{"errorMessages": [...], "errors": {"field": "message"}}``.
The outcome comes from the one classification table (``core.outcomes``); a 429's delay is
``Retry-After``. ``str(error)`` is for operators; ``user_message`` is safe to show in Teams
and, for a refused request (a JQL error above all), carries the service's own words. What
every ITSM connector's errors share is in ``connectors.itsm_errors``.
"""

from __future__ import annotations

import httpx

from connectors.itsm_errors import ItsmErrorKinds, ItsmRefused, ItsmServiceError, body_text
from core.errors import Outcome


class JsmError(ItsmServiceError):
    """A call to Jira failed; ``message`` is the service's words (every message joined)."""

    service = "Jira"
    user_message = "Jira Service Management could not complete the request."


class JsmRefused(ItsmRefused, JsmError):  # type: ignore[override]  # the property wins
    """400/401/403 (or another 4xx): refused, and the service said why."""

    access_hint = (
        "Warden's Jira account is not allowed to do this; ask an administrator to give "
        "it access to the project."
    )


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
    return "; ".join(parts) if parts else body_text(response)


ERRORS = ItsmErrorKinds[JsmError](
    base=JsmError,
    refused=JsmRefused,
    not_found=JsmNotFound,
    throttled=JsmThrottled,
    unavailable=JsmUnavailable,
    read=lambda response: (envelope(response), ""),
)
"""Jira's error family: what a failure becomes."""


def error_from_response(response: httpx.Response) -> JsmError:
    """The typed error for an answer with a failure status (the body must have been read)."""
    return ERRORS.from_response(response)


def invalid_answer(message: str) -> JsmUnavailable:
    """The error for a 2xx answer Warden cannot read (not JSON, not the expected shape)."""
    return JsmUnavailable(message, outcome=Outcome.RETRY)
