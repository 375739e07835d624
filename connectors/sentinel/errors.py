"""Sentinel's (ARM's) error envelope, turned into Warden's typed errors.

ARM answers a failure with a ``CloudError`` body, ``{"error": {"code", "message"}}``, and
the ``x-ms-request-id`` / ``x-ms-correlation-request-id`` headers Microsoft support asks
for. ``ERRORS`` picks the error type by status; reading the envelope and the outcome (from
the one classification table, ``core.outcomes``) are shared with every ARM connector
(``connectors.arm_errors``).

Every error here is a ``DeliveryError``, so an outbox job that calls Sentinel fails the
way the worker understands. ``str(error)`` is for operators (status, code, the service's
message, request ids); ``user_message`` is safe to show in Teams.
"""

from __future__ import annotations

from connectors.arm_errors import ArmErrorKinds, ArmServiceError
from core.errors import Outcome


class SentinelError(ArmServiceError):
    """A call to Sentinel failed; ``code`` and ``message`` are the service's own words."""

    service = "Sentinel"
    user_message = "Sentinel could not complete the request."


class IncidentNotFound(SentinelError):
    """404: the incident (or the comment, or the workspace itself) does not exist."""

    user_message = "This incident no longer exists in Sentinel."


class IncidentConflict(SentinelError):
    """409/412: the incident changed since the etag the update was based on."""

    user_message = "Someone changed this incident in Sentinel meanwhile; refresh and try again."


class SentinelThrottled(SentinelError):
    """429: Sentinel asks to slow down; ``retry_after`` is its delay in seconds, if named."""

    user_message = "Sentinel is busy; Warden will try again shortly."


class SentinelUnavailable(SentinelError):
    """5xx after the retries allowed, or no answer at all (timeouts, resets, open breaker)."""

    user_message = "Sentinel cannot be reached right now; Warden will try again."


class SentinelRefused(SentinelError):
    """400/401/403 (or another 4xx): Sentinel refused the request and said why."""

    @property
    def user_message(self) -> str:  # type: ignore[override]
        """What a responder may read: the validation message, or a hint about access."""
        if self.status in (401, 403) or self.status is None:
            return "Warden is not allowed to do this in Sentinel; ask an administrator."
        return f"Sentinel refused the request: {self.message}"


class InvalidIncidentChange(SentinelError, ValueError):
    """A change Sentinel would refuse (closing without a classification, ...): not sent.

    Its outcome is FAIL and it counts as attempted, so an outbox job that carries such a
    change is quarantined rather than deferred (``attempted=False`` means "try later").
    """

    def __init__(self, message: str) -> None:
        """Describe what is wrong with the change, in words a responder understands."""
        super().__init__(message, code="InvalidChange", outcome=Outcome.FAIL)

    @property
    def user_message(self) -> str:  # type: ignore[override]
        """The reason itself: it names the missing or wrong field, nothing private."""
        return self.message


ERRORS = ArmErrorKinds(
    SentinelError,
    refused=SentinelRefused,
    unavailable=SentinelUnavailable,
    by_status={
        404: IncidentNotFound,
        409: IncidentConflict,
        412: IncidentConflict,
        429: SentinelThrottled,
    },
)
"""404 → ``IncidentNotFound``; 409 and 412 → ``IncidentConflict``; 429 →
``SentinelThrottled``; 5xx → ``SentinelUnavailable``; any other → ``SentinelRefused``. A
credential that gave no ARM token, refused or unreachable, is retried later either way (a
token endpoint in trouble also answers as a refusal)."""
