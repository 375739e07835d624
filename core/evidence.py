"""Evidence requests: what is asked of an owner, what they hand in, and how reviewers decide.

The workflow is a state machine of pure functions. Each takes the request as it stands and
returns a :class:`Transition`: the new request (``version`` one higher), the record it adds
(a :class:`Submission` or a :class:`Decision`) and the :class:`~core.audit_chain.AuditDraft`
entries to append, which the store writes in the same transaction. A refused action raises a
subclass of :class:`~core.errors.EvidenceRefused` whose ``user_message`` the card shows.

::

    open ──submit──► submitted ──approve × N──► approved
     ▲                   │ ──reject──────────► rejected
     └─changes_requested◄┘ ──request_changes
    (open, submitted, changes_requested) ──resolve_by_policy──► resolved_by_policy

Rules, and who checks what:

- **Submitting**: the owner, while the request is open or changes were requested. When the
  owner is an Entra group, or a person lets a delegate answer for them, the caller (who can ask
  Graph) passes ``acts_for_owner=True``; the domain records who actually submitted. Each
  submission is a new version (1, 2, …); older ones are kept.
- **Separation of duties**: neither the owner (nor anyone the caller says acts for the owner)
  nor the submitter of the current version may approve. Rejecting and requesting changes are
  open to them (withdrawing one's own evidence is harmless). Whether the actor is a reviewer at
  all (a member of the requirement's reviewer groups) is the caller's check.
- **N of M**: approved once ``approvals_needed`` distinct people approved the current
  version; each approver counts once; approvals of an earlier version do not count. One
  rejection rejects; a change request sends the request back to its owner.
- **Stale cards**: every action carries the ``version`` its card showed (``seen``); an older
  one raises :class:`~core.errors.StaleRequest`, naming who changed what, so the card refreshes.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import JsonValue

from core.audit_chain import AuditAction, AuditDraft
from core.catalog import EvidenceKind
from core.errors import EvidenceRefused, NotRequestOwner, SeparationOfDuties, StaleRequest
from core.evidence_models import (
    Decision,
    DecisionKind,
    Evidence,
    EvidenceRequest,
    RequestDraft,
    RequestSource,
    RequestStatus,
    Submission,
    Verdict,
    draft_for,
    policy_key,
)

__all__ = [
    "WARDEN",
    "Decision",
    "DecisionKind",
    "Evidence",
    "EvidenceKind",
    "EvidenceRequest",
    "RequestDraft",
    "RequestSource",
    "RequestStatus",
    "Submission",
    "Transition",
    "Verdict",
    "approvers",
    "check_version",
    "decide",
    "draft_for",
    "new_request_id",
    "open_request",
    "policy_key",
    "reassign",
    "resolve_by_policy",
    "submit",
]

WARDEN = "warden"
"""The actor Warden records for what it does itself (open from policy, resolve by policy)."""


@dataclass(frozen=True)
class Transition:
    """The outcome of an accepted action: the new request, what it records, its audit drafts."""

    request: EvidenceRequest
    audit: tuple[AuditDraft, ...]
    submission: Submission | None = None
    decision: Decision | None = None


def new_request_id() -> str:
    """A fresh request id (32 hex digits; safe in SharePoint folder names)."""
    return uuid.uuid4().hex


def open_request(
    draft: RequestDraft, *, request_id: str | None = None, at: datetime | None = None
) -> Transition:
    """A new open request for ``draft``, with its ``requested`` audit draft."""
    now = at or datetime.now(UTC)
    request = EvidenceRequest(
        **draft.model_dump(),
        id=request_id or new_request_id(),
        created_at=now,
        updated_at=now,
        updated_by=draft.requested_by,
    )
    details: dict[str, JsonValue] = {
        "source": draft.source.value,
        "scope": draft.scope,
        "period": draft.period,
        "owner": draft.owner,
        "due": draft.due.isoformat(),
        "approvalsNeeded": draft.approvals_needed,
        "resources": list(draft.resources),
    }
    return Transition(request, (_audit(request, AuditAction.REQUESTED, details),))


def check_version(request: EvidenceRequest, seen: int) -> None:
    """Raise :class:`StaleRequest` when a card showed an older ``version`` than the request's."""
    if seen != request.version:
        raise StaleRequest(
            request_id=request.id,
            seen=seen,
            version=request.version,
            status=request.status.value,
            by=request.updated_by,
            at=request.updated_at,
        )


def submit(
    request: EvidenceRequest,
    evidence: Evidence,
    actor: str,
    *,
    seen: int,
    acts_for_owner: bool = False,
    accepted: Collection[EvidenceKind] | None = None,
    at: datetime | None = None,
) -> Transition:
    """Hand in ``evidence`` as the next submission; the request goes to ``submitted``.

    ``acts_for_owner``: the caller checked that ``actor`` answers for the owner (a member of
    the owning group, or a delegate). ``accepted``: the requirement's evidence kinds.
    """
    check_version(request, seen)
    if not request.status.awaiting_evidence:
        raise EvidenceRefused(
            f"evidence request {request.id} is {request.status.value}: no submission expected",
            f"This request is {_words(request.status)}; it takes no evidence now.",
        )
    if not (acts_for_owner or _same(actor, request.owner)):
        raise NotRequestOwner(f"{actor} is not the owner of evidence request {request.id}")
    if accepted is not None and evidence.kind not in accepted:
        kinds = ", ".join(sorted(kind.value for kind in accepted))
        raise EvidenceRefused(
            f"evidence request {request.id}: {evidence.kind.value} not accepted",
            f"This requirement accepts {kinds} as evidence, not {evidence.kind.value}.",
        )
    now = at or datetime.now(UTC)
    number = request.submission + 1
    submission = Submission(
        **evidence.model_dump(), request_id=request.id, version=number, submitted_by=actor, at=now
    )
    changed = _advance(
        request, RequestStatus.SUBMITTED, actor, now, submission=number, submitted_by=actor
    )
    details = evidence.model_dump(mode="json", exclude_none=True)
    details = {_camel(key): value for key, value in details.items()}
    details["submission"] = number
    return Transition(
        changed, (_audit(changed, AuditAction.SUBMITTED, details),), submission=submission
    )


def approvers(request: EvidenceRequest, decisions: Sequence[Decision]) -> list[str]:
    """The distinct people who approved the current submission, in the order they did."""
    found: dict[str, str] = {}
    for decision in decisions:
        if decision.kind is DecisionKind.APPROVE and decision.submission == request.submission:
            found.setdefault(decision.by.casefold(), decision.by)
    return list(found.values())


def decide(
    request: EvidenceRequest,
    decisions_so_far: Sequence[Decision],
    verdict: Verdict,
    actor: str,
    *,
    seen: int,
    acts_for_owner: bool = False,
    at: datetime | None = None,
    allowed_by: Mapping[str, JsonValue] | None = None,
) -> Transition:
    """Record a reviewer's ``verdict`` on the current submission (rules in the module doc).

    ``acts_for_owner``: the caller found that ``actor`` answers for the owner (e.g. a member
    of the owning group); such a person cannot approve. ``allowed_by``: the role grant that
    let ``actor`` decide (``core.roles.Grant.record``), kept in the audit entry.
    """
    check_version(request, seen)
    if request.status is not RequestStatus.SUBMITTED:
        raise EvidenceRefused(
            f"evidence request {request.id} is {request.status.value}: nothing to decide",
            f"This request is {_words(request.status)}; there is no evidence to decide on.",
        )
    approved_by = approvers(request, decisions_so_far)
    if verdict.kind is DecisionKind.APPROVE:
        _check_may_approve(request, actor, approved_by, acts_for_owner)
    now = at or datetime.now(UTC)
    decision = Decision(
        **verdict.model_dump(),
        request_id=request.id,
        submission=request.submission,
        by=actor,
        at=now,
    )
    details: dict[str, JsonValue] = {"submission": request.submission}
    if verdict.kind is DecisionKind.APPROVE:
        count = len(approved_by) + 1
        done = count >= request.approvals_needed
        status = RequestStatus.APPROVED if done else RequestStatus.SUBMITTED
        details |= {"approvals": count, "approvalsNeeded": request.approvals_needed}
        action = AuditAction.APPROVED
    elif verdict.kind is DecisionKind.REJECT:
        status, action = RequestStatus.REJECTED, AuditAction.REJECTED
        details["reason"] = verdict.comment
    else:
        status, action = RequestStatus.CHANGES_REQUESTED, AuditAction.CHANGES_REQUESTED
        details["comment"] = verdict.comment
    changed = _advance(request, status, actor, now)
    details["status"] = status.value
    if allowed_by is not None:
        details["allowedBy"] = dict(allowed_by)
    return Transition(changed, (_audit(changed, action, details),), decision=decision)


def _check_may_approve(
    request: EvidenceRequest, actor: str, approved_by: list[str], acts_for_owner: bool
) -> None:
    if acts_for_owner or _same(actor, request.owner):
        raise SeparationOfDuties(f"{actor} owns evidence request {request.id}")
    if request.submitted_by and _same(actor, request.submitted_by):
        raise SeparationOfDuties(
            f"{actor} submitted version {request.submission} of evidence request {request.id}"
        )
    if any(_same(actor, other) for other in approved_by):
        raise EvidenceRefused(
            f"{actor} already approved version {request.submission} of {request.id}",
            "You already approved this evidence; each reviewer counts once.",
        )


def resolve_by_policy(request: EvidenceRequest, *, at: datetime | None = None) -> Transition:
    """Close a policy request whose resource became compliant (Warden is the actor)."""
    if request.source is not RequestSource.POLICY or request.status.final:
        raise EvidenceRefused(
            f"evidence request {request.id} ({request.source.value}, {request.status.value}) "
            "cannot be resolved by policy",
            f"This request is {_words(request.status)}; policy cannot resolve it.",
        )
    now = at or datetime.now(UTC)
    changed = _advance(request, RequestStatus.RESOLVED_BY_POLICY, WARDEN, now)
    details: dict[str, JsonValue] = {"scope": request.scope, "was": request.status.value}
    return Transition(changed, (_audit(changed, AuditAction.RESOLVED_BY_POLICY, details),))


def reassign(
    request: EvidenceRequest, owner: str, *, reason: str, at: datetime | None = None
) -> Transition:
    """Hand a pending request to a new ``owner`` (Warden is the actor); its state stays.

    ``reason`` says why, for the audit log (e.g. ``owner deprovisioned; manager``).
    """
    if request.status.final or _same(request.owner, owner):
        raise EvidenceRefused(
            f"evidence request {request.id} ({request.status.value}) cannot move to {owner}",
            f"This request is {_words(request.status)}; it cannot change hands.",
        )
    now = at or datetime.now(UTC)
    changed = _advance(request, request.status, WARDEN, now, owner=owner)
    details: dict[str, JsonValue] = {"from": request.owner, "to": owner, "reason": reason}
    return Transition(changed, (_audit(changed, AuditAction.REASSIGNED, details),))


def _advance(
    request: EvidenceRequest,
    status: RequestStatus,
    actor: str,
    at: datetime,
    **more: object,
) -> EvidenceRequest:
    """The request in ``status``, one version later, last changed by ``actor`` at ``at``."""
    update = {
        "status": status,
        "version": request.version + 1,
        "updated_at": at,
        "updated_by": actor,
        **more,
    }
    return request.model_copy(update=update)


def _audit(
    request: EvidenceRequest, action: AuditAction, details: dict[str, JsonValue]
) -> AuditDraft:
    return AuditDraft(
        at=request.updated_at,
        actor=request.updated_by,
        action=action,
        request_id=request.id,
        requirement_id=request.requirement_id,
        details={**details, "version": request.version},
    )


def _same(one: str, other: str) -> bool:
    """UPNs and object ids compare case-blind."""
    return one.strip().casefold() == other.strip().casefold()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _words(status: RequestStatus) -> str:
    return status.value.replace("_", " ")
