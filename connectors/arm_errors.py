"""ARM's error envelope, shared by every ARM connector (Sentinel, Policy Insights, ...).

ARM services answer a failure with ``{"error": {"code", "message"}}`` (CloudError,
QueryFailure) and the ``x-ms-request-id`` / ``x-ms-correlation-request-id`` headers. Each
connector subclasses :class:`ArmServiceError` once (naming its service) and describes its
family in an :class:`ArmErrorKinds` (which subclass for which status, which one for a
refused credential or an unreadable answer); the description, the envelope and the outcome
(from the one classification table, ``core.outcomes``) are the same for all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Self, TypeVar

import httpx

from connectors.http import server_delay
from core.errors import DeliveryError, Outcome
from core.outcomes import classify_status

if TYPE_CHECKING:  # azure-core comes with the first credential (ADR 9)
    from azure.core.exceptions import AzureError

MAX_MESSAGE = 500
"""Longest body text kept as the message when the envelope has none."""


class ArmServiceError(DeliveryError):
    """A call to an ARM service failed; ``code`` and ``message`` are the service's words.

    ``status`` is None when no answer came (or the call never went out). ``request_id``
    and ``correlation_id`` are ARM's ``x-ms-request-id`` and ``x-ms-correlation-request-id``.
    """

    service = "ARM"
    """The service's name at the head of the operator's description."""

    user_message = "Azure could not complete the request."

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
        head = self.service + (f" {status}" if status is not None else "")
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

    @classmethod
    def from_delivery(cls, error: DeliveryError) -> Self:
        """This service's form of a transport failure of the resilient HTTP layer."""
        return cls(
            str(error),
            status=error.status,
            code="NoAnswer" if error.attempted else "NotSent",
            outcome=error.outcome,
            retry_after=error.retry_after,
            attempted=error.attempted,
        )


E = TypeVar("E", bound=ArmServiceError)


def envelope(response: httpx.Response) -> tuple[str, str]:
    """The ``code`` and ``message`` of an ARM error body, or the best stand-ins."""
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
        message = response.text.strip()[:MAX_MESSAGE] or f"HTTP {response.status_code}"
    return code, message


def answer_delay(response: httpx.Response) -> float | None:
    """The delay an answer asks for (``Retry-After`` and its ARM variants), if any."""
    return server_delay(response.headers)


def from_response(
    kind: type[E],
    response: httpx.Response,
    *,
    read: Callable[[httpx.Response], tuple[str, str]] = envelope,
    delay: Callable[[httpx.Response], float | None] = answer_delay,
) -> E:
    """An error of ``kind`` for an answer with a failure status (the body must be read).

    ``read`` gives the code and message (ARM's envelope unless the service says more),
    ``delay`` the seconds to wait before trying again.
    """
    status = response.status_code
    code, message = read(response)
    headers = response.headers
    return kind(
        message,
        status=status,
        code=code,
        outcome=classify_status(status),
        retry_after=delay(response),
        request_id=headers.get("x-ms-request-id"),
        correlation_id=headers.get("x-ms-correlation-request-id"),
    )


@dataclass(frozen=True)
class ArmErrorKinds(Generic[E]):
    """One ARM connector's error family, and how a failure becomes one of its errors.

    ``by_status`` names the error of a status (404, 409, 429, ...); any other 5xx is
    ``unavailable``, any other 4xx ``refused``. ``credential_refused`` is the outcome of a
    credential the token endpoint refused. ``read`` and ``delay`` are as for
    :func:`from_response`.
    """

    base: type[E]
    refused: type[E]
    unavailable: type[E]
    by_status: Mapping[int, type[E]] = field(default_factory=dict)
    credential_refused: Outcome = Outcome.RETRY
    read: Callable[[httpx.Response], tuple[str, str]] = envelope
    delay: Callable[[httpx.Response], float | None] = answer_delay

    def from_response(self, response: httpx.Response) -> E:
        """The typed error for an answer with a failure status (the body must be read)."""
        status = response.status_code
        kind = self.by_status.get(status)
        if kind is None:
            kind = self.unavailable if status >= 500 else self.refused
        return from_response(kind, response, read=self.read, delay=self.delay)

    def from_credential(self, error: AzureError) -> E:
        """The error for a credential that gave no ARM token: refused, or unreachable."""
        from azure.core.exceptions import ClientAuthenticationError

        message = f"no ARM token: {error.message}"
        if isinstance(error, ClientAuthenticationError):
            outcome = self.credential_refused
            return self.refused(message, code="CredentialRefused", outcome=outcome)
        return self.unavailable(message, code="CredentialUnavailable", outcome=Outcome.RETRY)

    def invalid_answer(self, message: str, *, outcome: Outcome = Outcome.RETRY) -> E:
        """The error for a 2xx answer Warden cannot read (not JSON, not the contract's shape)."""
        return self.unavailable(message, code="InvalidResponse", outcome=outcome)
