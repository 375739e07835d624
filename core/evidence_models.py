"""Evidence request records: statuses, sources, drafts, requests, submissions, decisions.

Plain validated data (pydantic, frozen); the workflow that moves a request between statuses
lives in :mod:`core.evidence`, which re-exports every name here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.catalog import EvidenceKind, Requirement

_SHA256 = re.compile(r"[0-9a-f]{64}")


class RequestStatus(StrEnum):
    """Where an evidence request stands."""

    OPEN = "open"
    SUBMITTED = "submitted"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    RESOLVED_BY_POLICY = "resolved_by_policy"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """True once nothing more happens to the request."""
        return self in _FINAL

    @property
    def awaiting_evidence(self) -> bool:
        """True while the owner is expected to hand in (new) evidence."""
        return self in (RequestStatus.OPEN, RequestStatus.CHANGES_REQUESTED)


_FINAL = frozenset(
    {
        RequestStatus.APPROVED,
        RequestStatus.REJECTED,
        RequestStatus.RESOLVED_BY_POLICY,
        RequestStatus.CANCELLED,
    }
)


class RequestSource(StrEnum):
    """Where a request came from."""

    POLICY = "policy"
    CHAT = "chat"
    CAMPAIGN = "campaign"


class DecisionKind(StrEnum):
    """What a reviewer decided about one submission."""

    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_CHANGES = "request_changes"


def policy_key(requirement_id: str, scope: str) -> str:
    """The dedupe key of a policy request: one open request per requirement and resource.

    ARM resource ids compare case-blind, so the scope is lower-cased.
    """
    return f"policy|{requirement_id}|{scope.strip().lower()}"


class RequestDraft(BaseModel):
    """A request to open (see :func:`draft_for` to build one from the catalog)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requirement_id: str = Field(min_length=1, max_length=64)
    scope: str = Field("", max_length=1024, description="Resource id; empty unless policy.")
    period: str = Field(min_length=1, max_length=32, description="e.g. 2026-Q4.")
    owner: str = Field(min_length=1, max_length=256, description="UPN or Entra object id.")
    requested_by: str = Field(min_length=1, max_length=256)
    source: RequestSource
    due: date
    approvals_needed: int = Field(ge=1, le=10)
    resources: tuple[str, ...] = Field((), description="The non-compliant resources.")

    @model_validator(mode="after")
    def _scope_fits_source(self) -> RequestDraft:
        if (self.source is RequestSource.POLICY) != bool(self.scope):
            raise ValueError("a policy request names its resource scope; others have none")
        return self

    def dedupe_key(self) -> str:
        """What makes two open requests the same one; at most one is open per key.

        Policy: (requirement, scope). Campaign: (requirement, period), so running a campaign
        twice opens nothing new. Chat: (requirement, owner, period), so asking the same person
        twice for the same evidence returns the request already open.
        """
        if self.source is RequestSource.POLICY:
            return policy_key(self.requirement_id, self.scope)
        if self.source is RequestSource.CAMPAIGN:
            return f"campaign|{self.requirement_id}|{self.period}"
        return f"chat|{self.requirement_id}|{self.owner.casefold()}|{self.period}"


def draft_for(
    requirement: Requirement,
    *,
    source: RequestSource,
    period: str,
    requested_by: str,
    today: date,
    scope: str = "",
    owner: str | None = None,
    due: date | None = None,
    resources: Sequence[str] = (),
) -> RequestDraft:
    """A draft for ``requirement``: its owner, its approvals, due ``due_days`` after today."""
    return RequestDraft(
        requirement_id=requirement.id,
        scope=scope,
        period=period,
        owner=owner or requirement.owner.id,
        requested_by=requested_by,
        source=source,
        due=due or today + timedelta(days=requirement.due_days),
        approvals_needed=requirement.approvals,
        resources=tuple(resources),
    )


class EvidenceRequest(RequestDraft):
    """A request as stored: the draft plus its id, state and history counters."""

    id: str = Field(min_length=1, max_length=64)
    status: RequestStatus = RequestStatus.OPEN
    submission: int = Field(0, ge=0, description="Current submission's number; 0 before one.")
    submitted_by: str | None = Field(None, description="Who handed in the current submission.")
    version: int = Field(1, ge=1, description="Bumped by every change; cards carry it.")
    created_at: datetime
    updated_at: datetime
    updated_by: str = Field(min_length=1, description="Who made the last change.")

    @property
    def open_key(self) -> str | None:
        """The dedupe key while the request is not final; ``None`` after."""
        return None if self.status.final else self.dedupe_key()


class Evidence(BaseModel):
    """What an owner hands in: a filed file, a link, or an attestation text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: EvidenceKind
    text: str | None = Field(None, description="The attestation, or a note.")
    url: str | None = Field(None, description="The link handed in.")
    sha256: str | None = Field(None, description="Hex SHA-256 of the file.")
    file_name: str | None = None
    file_size: int | None = Field(None, ge=0)
    item_id: str | None = Field(None, description="SharePoint drive item id, once filed.")
    web_url: str | None = Field(None, description="SharePoint web URL, once filed.")

    @model_validator(mode="after")
    def _complete(self) -> Evidence:
        if self.kind is EvidenceKind.FILE and self.awaiting_file:
            if not self.file_name:
                raise ValueError("a file to be filed needs its name")
        elif self.kind is EvidenceKind.FILE:
            if not (self.sha256 and _SHA256.fullmatch(self.sha256)):
                raise ValueError("a file needs its SHA-256 (64 lower-case hex digits)")
            if not self.file_name or self.file_size is None:
                raise ValueError("a file needs its name and size")
        elif self.kind is EvidenceKind.LINK:
            if not (self.url and self.url.startswith("https://")):
                raise ValueError("a link must be an https:// URL")
        elif not (self.text and self.text.strip()):
            raise ValueError("an attestation needs its text")
        return self

    @property
    def awaiting_file(self) -> bool:
        """True for a file handed in from chat that is not filed yet: its name is known, its
        size, SHA-256 and SharePoint item come once Warden has fetched and filed it."""
        return (
            self.kind is EvidenceKind.FILE
            and self.sha256 is None
            and self.file_size is None
            and self.item_id is None
        )


class Submission(Evidence):
    """One handed-in version of the evidence; a resubmission adds the next version."""

    request_id: str
    version: int = Field(ge=1)
    submitted_by: str
    at: datetime


class Verdict(BaseModel):
    """What a reviewer clicked: approve, reject (reason required) or request changes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: DecisionKind
    comment: str = Field("", description="The reason of a rejection, or the changes asked.")

    @model_validator(mode="after")
    def _explained(self) -> Verdict:
        if self.kind is not DecisionKind.APPROVE and not self.comment.strip():
            raise ValueError(f"{self.kind.value} needs a reason")
        return self


class Decision(Verdict):
    """A recorded verdict: who, when, about which submission."""

    request_id: str
    submission: int = Field(ge=1)
    by: str
    at: datetime
