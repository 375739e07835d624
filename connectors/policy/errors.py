"""Policy Insights' (ARM's) error envelope, turned into Warden's typed errors.

Policy Insights answers a failure with a ``QueryFailure`` body, ``{"error": {"code",
"message"}}`` (ARM's own refusals, such as a bad api-version or token, use the same shape),
and the ``x-ms-request-id`` / ``x-ms-correlation-request-id`` headers, read as for every ARM
connector (``connectors.arm_errors``); the outcome comes from ``core.outcomes``.

Every error here is a ``DeliveryError``; ``str(error)`` is for operators, ``user_message``
is safe to show in Teams.
"""

from __future__ import annotations

from connectors.arm_errors import ArmErrorKinds, ArmServiceError


class PolicyInsightsError(ArmServiceError):
    """A call to Policy Insights failed; ``code`` and ``message`` are the service's words."""

    service = "Policy Insights"
    user_message = "Azure Policy could not complete the request."


class PolicyNotFound(PolicyInsightsError):
    """404: the scope (subscription, resource group or resource) does not exist."""

    user_message = "Azure Policy does not know this scope or resource."


class PolicyThrottled(PolicyInsightsError):
    """429: Policy Insights asks to slow down; ``retry_after`` is its delay, if named."""

    user_message = "Azure Policy is busy; Warden will try again shortly."


class PolicyUnavailable(PolicyInsightsError):
    """5xx after the retries allowed, or no answer at all (timeouts, resets, open breaker)."""

    user_message = "Azure Policy cannot be reached right now; Warden will try again."


class PolicyRefused(PolicyInsightsError):
    """400/401/403 (or another 4xx): the request was refused, and the service said why."""

    @property
    def user_message(self) -> str:  # type: ignore[override]
        """What a reviewer may read: the validation message, or a hint about access."""
        if self.status in (401, 403) or self.status is None:
            return "Warden is not allowed to read Azure Policy here; ask an administrator."
        return f"Azure Policy refused the request: {self.message}"


ERRORS = ArmErrorKinds(
    PolicyInsightsError,
    refused=PolicyRefused,
    unavailable=PolicyUnavailable,
    by_status={404: PolicyNotFound, 429: PolicyThrottled},
)
"""404 → ``PolicyNotFound``; 429 → ``PolicyThrottled``; 5xx → ``PolicyUnavailable``; any
other → ``PolicyRefused``. A credential that gave no ARM token is retried later either way."""
