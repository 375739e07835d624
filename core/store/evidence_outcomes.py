"""The outbox job that tells an ITSM system how an evidence request ended.

When a reviewer's decision makes a request ``rejected`` or ``approved``, the evidence desk
writes one ``itsm.evidence_outcome`` job in the decision's own transaction (through the
``jobs`` of :func:`core.store.evidence.decide`). Its payload, :class:`EvidenceOutcome`, is
vendor-neutral: what was decided, by whom, about which evidence (hash and link); the
connector's handler decides what that means in its system (a remediation change request).

Whether the decision ends the request is known before the transaction: the pure rule of
:func:`core.evidence.decide` is run on the request as read, at the version the card showed.
The real decision runs the same rule at that same version (a request whose version moved
is refused as stale, writing nothing), so the job is written exactly when the decision is.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.catalog import Requirement
from core.errors import EvidenceRefused
from core.evidence import DecisionKind, RequestStatus, Verdict
from core.evidence import decide as decide_rule
from core.store import evidence as evidence_store
from core.store.evidence import RequestRecord
from core.store.evidence_audit import FollowUp
from core.store.evidence_cards import names_of
from core.store.links import record_ordering_key
from core.store.store import Store

ITSM_EVIDENCE_JOB = "itsm.evidence_outcome"
"""Job kind: write the end of an evidence request (rejected, approved) to the ITSM system.

Its payload is an :class:`EvidenceOutcome` (``model_dump(mode="json")``)."""

ENDINGS = (RequestStatus.REJECTED, RequestStatus.APPROVED)
"""The decisions that reach the ITSM system."""


class EvidenceOutcome(BaseModel):
    """How an evidence request ended: the payload of an ``itsm.evidence_outcome`` job."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str = Field(min_length=1, max_length=64)
    requirement_id: str = Field(min_length=1)
    requirement_title: str = Field(min_length=1)
    decision: RequestStatus = Field(description="rejected or approved (one of ``ENDINGS``).")
    reason: str = Field("", description="The rejection's reason (empty for an approval).")
    decided_by: str = Field(min_length=1, description="Who made the deciding decision (name).")
    approvals: tuple[str, ...] = Field((), description="Who approved the evidence (names).")
    submission: int = Field(ge=1, description="The version of the evidence decided on.")
    sha256: str | None = Field(None, description="Hex SHA-256 of the evidence, when known.")
    link: str | None = Field(None, description="SharePoint web URL, else the link handed in.")
    decided_at: datetime

    @field_validator("decision")
    @classmethod
    def _an_ending(cls, decision: RequestStatus) -> RequestStatus:
        if decision not in ENDINGS:
            raise ValueError(f"{decision.value} does not end a request")
        return decision


def outcome_ordering_key(request_id: str) -> str:
    """Writes about one request run one at a time, in order: ``itsm|evidence|<request id>``."""
    return record_ordering_key("evidence", request_id)


async def outcome_job(
    store: Store,
    request_id: str,
    verdict: Verdict,
    actor: str,
    *,
    seen: int,
    requirement: Requirement,
) -> FollowUp | None:
    """The job to write with ``actor``'s ``verdict``; None unless it ends the request.

    None too when the rule refuses the verdict (the decision itself is refused then).
    """
    record = await evidence_store.record(store, request_id)
    if record is None:
        return None
    request = record.request
    so_far = [d for d in record.decisions if d.submission == request.submission]
    try:
        change = decide_rule(request, so_far, verdict, actor, seen=seen)
    except EvidenceRefused:
        return None
    ended = change.request.status
    if ended not in ENDINGS or change.decision is None:
        return None
    approvers = [d.by for d in (*so_far, change.decision) if d.kind is DecisionKind.APPROVE]
    names = await names_of(store, [actor, *approvers])
    sha256, link = _evidence_of(record)
    outcome = EvidenceOutcome(
        request_id=request.id,
        requirement_id=requirement.id,
        requirement_title=requirement.title,
        decision=ended,
        reason=verdict.comment if ended is RequestStatus.REJECTED else "",
        decided_by=names.get(actor.casefold(), actor),
        approvals=tuple(dict.fromkeys(names.get(a.casefold(), a) for a in approvers)),
        submission=request.submission,
        sha256=sha256,
        link=link,
        decided_at=change.decision.at,
    )
    return FollowUp(
        ITSM_EVIDENCE_JOB, outcome_ordering_key(request.id), outcome.model_dump(mode="json")
    )


def _evidence_of(record: RequestRecord) -> tuple[str | None, str | None]:
    """The current submission's hash and link (its SharePoint web URL, else its URL)."""
    current = [s for s in record.submissions if s.version == record.request.submission]
    if not current:
        return None, None
    submission = current[-1]
    return submission.sha256, submission.web_url or submission.url


__all__ = [
    "ENDINGS",
    "ITSM_EVIDENCE_JOB",
    "EvidenceOutcome",
    "outcome_job",
    "outcome_ordering_key",
]
