"""The typed errors of an ITSM connector (ServiceNow, Jira Service Management), shared.

Each connector subclasses :class:`ItsmServiceError` once (naming its service), adds its
refused (over :class:`ItsmRefused`), not-found, throttled and unavailable errors, and
describes the family in an :class:`ItsmErrorKinds`: which error for which status, how its
failure body reads (the service's message and detail) and how long a 429 waits. The
operator's description, the outcome (from the one classification table,
``core.outcomes``) and the refused request's ``user_message`` are the same for all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Generic, Self, TypeVar

import httpx

from connectors.http import server_delay
from core.errors import DeliveryError, Outcome
from core.outcomes import classify_status

MAX_MESSAGE = 300
"""Longest body text kept as the message when the envelope has none."""


class ItsmServiceError(DeliveryError):
    """A call to an ITSM service failed; ``message`` and ``detail`` are the service's words."""

    service: ClassVar[str] = "ITSM"
    """The service's name at the head of the operator's description (and in user messages)."""

    user_message = "The ITSM system could not complete the request."

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
        head = self.service + (f" {status}" if status is not None else "")
        tail = f" ({detail})" if detail else ""
        super().__init__(f"{head}: {message}{tail}", outcome=outcome, status=status)
        self.retry_after, self.attempted = retry_after, attempted

    @classmethod
    def from_delivery(cls, error: DeliveryError) -> Self:
        """This service's form of a transport failure of the resilient HTTP layer."""
        made = cls(str(error), status=error.status, outcome=error.outcome)
        made.retry_after, made.attempted = error.retry_after, error.attempted
        return made


class ItsmRefused(ItsmServiceError):
    """400/401/403 (or another 4xx): refused, and the service said why.

    A connector's refused error derives from this and from its own base, and sets
    ``access_hint``: what a responder reads when the account lacks access (401/403).
    """

    access_hint: ClassVar[str] = "Warden's account is not allowed to do this."

    @property
    def user_message(self) -> str:  # type: ignore[override]
        """A hint about access, or the service's own message (a validation error)."""
        if self.status in (401, 403):
            return self.access_hint
        return f"{self.service} refused the request: {self.message}"


def body_text(response: httpx.Response) -> str:
    """The start of a failure body without a message in it, or the status as a stand-in."""
    return response.text.strip()[:MAX_MESSAGE] or (
        response.reason_phrase or f"HTTP {response.status_code}"
    )


def retry_delay(headers: httpx.Headers) -> float | None:
    """The delay ``Retry-After`` asks for, if any."""
    return server_delay(headers)


E = TypeVar("E", bound=ItsmServiceError)


@dataclass(frozen=True)
class ItsmErrorKinds(Generic[E]):
    """One ITSM connector's error family, and how a failure becomes one of its errors.

    404 is ``not_found``, 429 ``throttled``, a 5xx ``unavailable`` and any other status
    ``refused``. ``read`` gives the message and detail of a failure body, ``delay`` the
    seconds a failure asks to wait.
    """

    base: type[E]
    refused: type[E]
    not_found: type[E]
    throttled: type[E]
    unavailable: type[E]
    read: Callable[[httpx.Response], tuple[str, str]]
    delay: Callable[[httpx.Headers], float | None] = retry_delay

    def from_response(self, response: httpx.Response) -> E:
        """The typed error for an answer with a failure status (the body must have been read)."""
        status = response.status_code
        kind = self.refused
        if status == 404:
            kind = self.not_found
        elif status == 429:
            kind = self.throttled
        elif status >= 500:
            kind = self.unavailable
        message, detail = self.read(response)
        return kind(
            message,
            detail=detail,
            status=status,
            outcome=classify_status(status),
            retry_after=self.delay(response.headers),
        )

    def invalid_answer(self, message: str) -> E:
        """The error for a 2xx answer Warden cannot read (not JSON, not the expected shape)."""
        return self.unavailable(message, outcome=Outcome.RETRY)
