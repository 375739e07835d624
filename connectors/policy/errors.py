"""Policy Insights' (ARM's) error envelope, turned into Warden's typed errors.

Policy Insights answers a failure with a ``QueryFailure`` body, ``{"error": {"code",
"message"}}`` (ARM's own refusals, such as a bad api-version or token, use the same shape),
and the ``x-ms-request-id`` / ``x-ms-correlation-request-id`` headers. The outcome (retry,
rate-limited, fail) comes from the one classification table, ``core.outcomes``.

Every error here is a ``DeliveryError``; ``str(error)`` is for operators, ``user_message``
is safe to show in Teams.
"""

from __future__ import annotations

import httpx
from azure.core.exceptions import AzureError, ClientAuthenticationError

from connectors.http import server_delay
from core.errors import DeliveryError, Outcome
from core.outcomes import classify_status

_MAX_MESSAGE = 500


class PolicyInsightsError(DeliveryError):
    """A call to Policy Insights failed; ``code`` and ``message`` are the service's words.

    ``status`` is None when no answer came. ``request_id`` and ``correlation_id`` are ARM's
    ``x-ms-request-id`` and ``x-ms-correlation-request-id``.
    """

    user_message = "Azure Policy could not complete the request."

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        outcome: Outcome = Outcome.FAIL,
        retry_after: float | None = None,
        request_id: str | None = None,
        correlation_id: str | None = None,
        attempted: bool = True,
    ) -> None:
        """Describe the failure; the exception text joins every part for the operator."""
        self.code = code
        self.message = message
        self.request_id = request_id
        self.correlation_id = correlation_id
        head = "Policy Insights" + (f" {status}" if status is not None else "")
        head += f" {code}" if code else ""
        ids = [f"x-ms-request-id={request_id}"] if request_id else []
        if correlation_id and correlation_id != request_id:
            ids.append(f"x-ms-correlation-request-id={correlation_id}")
        tail = f" ({', '.join(ids)})" if ids else ""
        super().__init__(
            f"{head}: {message}{tail}",
            outcome=outcome,
            status=status,
            retry_after=retry_after,
            attempted=attempted,
        )


class PolicyNotFound(PolicyInsightsError):
    """404: the scope (subscription, resource group or resource) does not exist."""

    user_message = "Azure Policy does not know this scope or resource."


class PolicyThrottled(PolicyInsightsError):
    """429: Policy Insights asks to slow down; ``retry_after`` is its delay, if named."""

    user_message = "Azure Policy is busy; Warden will try again shortly."


class PolicyUnavailable(PolicyInsightsError):
    """5xx after the retries allowed, or no answer at all (timeouts, resets, open breaker)."""

    user_message = "Azure Policy cannot be reached right now; Warden will try again."

    @classmethod
    def from_delivery(cls, error: DeliveryError) -> PolicyUnavailable:
        """The Policy Insights form of a transport failure of the resilient HTTP layer."""
        return cls(
            str(error),
            status=error.status,
            code="NoAnswer" if error.attempted else "NotSent",
            outcome=error.outcome,
            retry_after=error.retry_after,
            attempted=error.attempted,
        )


class PolicyRefused(PolicyInsightsError):
    """400/401/403 (or another 4xx): the request was refused, and the service said why."""

    @property
    def user_message(self) -> str:  # type: ignore[override]
        """What a reviewer may read: the validation message, or a hint about access."""
        if self.status in (401, 403) or self.status is None:
            return "Warden is not allowed to read Azure Policy here; ask an administrator."
        return f"Azure Policy refused the request: {self.message}"


def _envelope(response: httpx.Response) -> tuple[str, str]:
    """The ``code`` and ``message`` of a QueryFailure body, or the best stand-ins."""
    code, message = response.reason_phrase or f"HTTP{response.status_code}", ""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or code)
        message = str(error.get("message") or "")
    if not message:
        message = response.text.strip()[:_MAX_MESSAGE] or f"HTTP {response.status_code}"
    return code, message


def error_from_response(response: httpx.Response) -> PolicyInsightsError:
    """The typed error for an answer with a failure status (4xx or 5xx).

    404 → ``PolicyNotFound``; 429 → ``PolicyThrottled``; 5xx → ``PolicyUnavailable``;
    any other → ``PolicyRefused``. The body must have been read.
    """
    status = response.status_code
    code, message = _envelope(response)
    kind: type[PolicyInsightsError] = PolicyRefused
    if status == 404:
        kind = PolicyNotFound
    elif status == 429:
        kind = PolicyThrottled
    elif status >= 500:
        kind = PolicyUnavailable
    headers = response.headers
    return kind(
        message,
        status=status,
        code=code,
        outcome=classify_status(status),
        retry_after=server_delay(headers),
        request_id=headers.get("x-ms-request-id"),
        correlation_id=headers.get("x-ms-correlation-request-id"),
    )


def error_from_credential(error: AzureError) -> PolicyInsightsError:
    """The error for a credential that gave no ARM token (retried later either way)."""
    message = f"no ARM token: {error.message}"
    if isinstance(error, ClientAuthenticationError):
        return PolicyRefused(message, code="CredentialRefused", outcome=Outcome.RETRY)
    return PolicyUnavailable(message, code="CredentialUnavailable", outcome=Outcome.RETRY)


def invalid_answer(message: str, *, outcome: Outcome = Outcome.RETRY) -> PolicyUnavailable:
    """The error for a 2xx answer Warden cannot read (not JSON, not the contract's shape)."""
    return PolicyUnavailable(message, code="InvalidResponse", outcome=outcome)
