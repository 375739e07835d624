"""Warden's typed errors: each keeps the operator's detail apart from what a user is told."""

from __future__ import annotations

from enum import StrEnum


class WardenError(Exception):
    """Base of Warden's own errors. ``user_message`` is safe to show to a person."""

    user_message = "Something went wrong in Warden."


class SettingsError(WardenError):
    """A setting is missing or wrong; the message names the environment variable."""


class StoreUnavailable(WardenError):
    """The store could not commit; the caller should retry later (HTTP 503)."""

    user_message = "Warden cannot save right now; please try again shortly."


class InvalidPayload(WardenError):
    """An inbound payload is not what its contract says; ``field`` names the culprit."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Outcome(StrEnum):
    """What to do after a failed outbound call (the classification table's answer)."""

    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    FAIL = "fail"
    GONE = "gone"


class DeliveryError(WardenError):
    """An outbound call failed; ``outcome`` says whether and when to try again.

    ``retry_after`` is the delay in seconds the service asked for, when it asked.
    ``status`` is the HTTP status, when there was an answer at all. ``attempted`` is False
    when the call never went out (an open circuit breaker): no attempt is counted.
    """

    def __init__(
        self,
        message: str,
        *,
        outcome: Outcome,
        status: int | None = None,
        retry_after: float | None = None,
        attempted: bool = True,
    ) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.status = status
        self.retry_after = retry_after
        self.attempted = attempted


class ResponderCheckUnavailable(Exception):
    """Whether a person may triage cannot be told now (the directory did not answer).

    The check fails closed: the person is told to try again, and nothing changes.
    """
