"""Warden's typed errors: each keeps the operator's detail apart from what a user is told."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum
from typing import ClassVar


class WardenError(Exception):
    """Base of Warden's own errors. ``user_message`` is safe to show to a person."""

    user_message = "Something went wrong in Warden."


class SettingsError(WardenError):
    """A setting is missing or wrong; the message names the environment variable."""


class MigrationFailed(WardenError):
    """The database could not be brought to this release's schema; Warden does not start."""


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


class ItsmRecordNotFound(DeliveryError):
    """An ITSM record (e.g. CHG0030001) does not exist, or Warden's account cannot read it.

    The Table API answers both cases alike (an empty result, or 404 "No Record found"),
    so the user is told both possibilities. The outcome is GONE: retrying cannot help.
    """

    def __init__(self, number: str, *, system: str = "ServiceNow", detail: str = "") -> None:
        """Describe the missing record ``number`` in ``system``; ``detail`` is for operators."""
        self.number = number
        self.system = system
        tail = f": {detail}" if detail else ""
        super().__init__(f"{system} record {number} not found{tail}", outcome=Outcome.GONE)

    @property
    def user_message(self) -> str:  # type: ignore[override]
        """What a responder may read: the number, and the two reasons it cannot be linked."""
        return (
            f"No {self.system} record {self.number} that Warden can read: check the number, "
            "or ask an administrator to let Warden's account read it."
        )


class ItsmAmbiguous(DeliveryError):
    """A query that must match one record matched several, or its answer cannot be trusted.

    ServiceNow ignores an invalid encoded query and answers with every record; an answer
    holding a record that does not satisfy the query is therefore never used. Nothing is
    written; the outcome is FAIL (the same query would get the same answer).
    """

    user_message = (
        "Warden found more than one matching ServiceNow record, or could not trust the "
        "answer, so it changed nothing; an administrator should check the records."
    )

    def __init__(self, message: str, *, matches: int | None = None) -> None:
        """Describe what was ambiguous; ``matches`` is how many records answered, if known."""
        self.matches = matches
        super().__init__(message, outcome=Outcome.FAIL)


class EvidenceRefused(WardenError):
    """An evidence request refused an action (wrong state, not allowed, bad evidence).

    ``user_message`` says why in words for the card; the exception text is for operators.
    """

    user_message = "This evidence request cannot take that action now."

    def __init__(self, message: str, user_message: str | None = None) -> None:
        super().__init__(message)
        if user_message is not None:
            self.user_message = user_message


class RequestNotFound(EvidenceRefused):
    """No evidence request has that id."""

    user_message = "Warden knows no such evidence request."


class NotRequestOwner(EvidenceRefused):
    """Someone other than the request's owner (or one acting for them) tried to submit."""

    user_message = "Only the owner of this evidence request can hand in its evidence."


class SeparationOfDuties(EvidenceRefused):
    """The owner or the submitter of the evidence tried to approve it."""

    user_message = "You cannot approve evidence that you own or submitted."


class StaleRequest(EvidenceRefused):
    """An action came from a card drawn before the request's last change.

    Carries what changed since (``status``, by whom, when, the current ``version``) so the
    card can be refreshed to show it.
    """

    STANDS: ClassVar[dict[str, str]] = {
        "open": "it waits for evidence",
        "submitted": "it waits for review",
        "changes_requested": "it was sent back for changes",
        "approved": "it is approved",
        "rejected": "it is rejected",
        "resolved_by_policy": "it was resolved by policy",
        "cancelled": "it is cancelled",
    }
    """How the request stands, in words, by its status."""

    def __init__(
        self, *, request_id: str, seen: int, version: int, status: str, by: str, at: datetime
    ) -> None:
        super().__init__(
            f"evidence request {request_id}: action on version {seen}, current is {version}",
        )
        self.request_id, self.seen, self.version = request_id, seen, version
        self.status, self.by, self.at = status, by, at
        self.user_message = self.told(by)

    def told(self, name: str) -> str:
        """The notice for the card, naming who changed the request as ``name``."""
        when = self.at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        stands = self.STANDS.get(self.status, "it is " + self.status.replace("_", " "))
        return (
            f"This request changed after your card was drawn: {name} changed it at {when}, "
            f"and {stands}. The card now shows where it stands; nothing was changed by "
            "your click."
        )


class RosterConflict(WardenError):
    """A roster write would give two people the same user name (SCIM ``uniqueness``)."""


class RosterNotFound(WardenError):
    """No person or group of the roster has that id."""


class RosterVersionMismatch(WardenError):
    """The person or group changed since the version the caller read (``If-Match``)."""
