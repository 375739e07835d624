"""Policy Insights' (ARM's) error envelope, turned into Warden's typed errors.

Policy Insights answers a failure with a ``QueryFailure`` body, ``{"error": {"code",
"message"}}`` (ARM's own refusals, such as a bad api-version or token, use the same shape),
and the ``x-ms-request-id`` / ``x-ms-correlation-request-id`` headers, read as for every ARM
connector (``connectors.arm_errors``); the outcome comes from ``core.outcomes``.

Every error here is a ``DeliveryError``; ``str(error)`` is for operators, ``user_message``
is safe to show in Teams.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from connectors.arm_errors import ArmServiceError, from_response
from core.errors import Outcome

if TYPE_CHECKING:
    from azure.core.exceptions import AzureError


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


def error_from_response(response: httpx.Response) -> PolicyInsightsError:
    """The typed error for an answer with a failure status (4xx or 5xx).

    404 → ``PolicyNotFound``; 429 → ``PolicyThrottled``; 5xx → ``PolicyUnavailable``;
    any other → ``PolicyRefused``. The body must have been read.
    """
    status = response.status_code
    kind: type[PolicyInsightsError] = PolicyRefused
    if status == 404:
        kind = PolicyNotFound
    elif status == 429:
        kind = PolicyThrottled
    elif status >= 500:
        kind = PolicyUnavailable
    return from_response(kind, response)


def error_from_credential(error: AzureError) -> PolicyInsightsError:
    """The error for a credential that gave no ARM token (retried later either way)."""
    from azure.core.exceptions import ClientAuthenticationError

    message = f"no ARM token: {error.message}"
    if isinstance(error, ClientAuthenticationError):
        return PolicyRefused(message, code="CredentialRefused", outcome=Outcome.RETRY)
    return PolicyUnavailable(message, code="CredentialUnavailable", outcome=Outcome.RETRY)


def invalid_answer(message: str, *, outcome: Outcome = Outcome.RETRY) -> PolicyUnavailable:
    """The error for a 2xx answer Warden cannot read (not JSON, not the contract's shape)."""
    return PolicyUnavailable(message, code="InvalidResponse", outcome=outcome)
