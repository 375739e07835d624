"""The evidence workflow's rules: who may submit and approve, N of M, stale cards, policy."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from core.audit_chain import AuditAction, AuditEntry, append, verify
from core.catalog import EvidenceKind
from core.errors import (
    EvidenceRefused,
    NotRequestOwner,
    SeparationOfDuties,
    StaleRequest,
)
from core.evidence import (
    WARDEN,
    Decision,
    DecisionKind,
    Evidence,
    EvidenceRequest,
    RequestDraft,
    RequestSource,
    RequestStatus,
    Transition,
    Verdict,
    approvers,
    decide,
    open_request,
    policy_key,
    resolve_by_policy,
    submit,
)

OWNER, ALICE, BOB, CAROL = "owner@contoso.com", "alice@contoso.com", "bob@contoso.com", "carol@x.io"
SCOPE = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/x/y/z"
AT = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
APPROVE = Verdict(kind=DecisionKind.APPROVE)
LINK = Evidence(kind=EvidenceKind.LINK, url="https://contoso.sharepoint.com/evidence/1")


def _draft(approvals: int = 2, source: RequestSource = RequestSource.POLICY) -> RequestDraft:
    return RequestDraft(
        requirement_id="ISO27001-A.8.5",
        scope=SCOPE if source is RequestSource.POLICY else "",
        period="2026-Q4",
        owner=OWNER,
        requested_by=WARDEN,
        source=source,
        due=date(2026, 12, 10),
        approvals_needed=approvals,
        resources=(SCOPE,),
    )


def _submitted(approvals: int = 2) -> EvidenceRequest:
    opened = open_request(_draft(approvals), request_id="r1", at=AT).request
    return submit(opened, LINK, OWNER, seen=opened.version, at=AT).request


class Journey:
    """A request and its decisions, moved on by the rules as a card would."""

    def __init__(self, request: EvidenceRequest) -> None:
        self.request = request
        self.decisions: list[Decision] = []

    def decide(self, verdict: Verdict, actor: str, *, acts_for_owner: bool = False) -> Transition:
        change = decide(
            self.request,
            self.decisions,
            verdict,
            actor,
            seen=self.request.version,
            acts_for_owner=acts_for_owner,
        )
        assert change.decision is not None
        self.decisions.append(change.decision)
        self.request = change.request
        return change


def test_open_request_policy_starts_open_with_requested_entry() -> None:
    """A new request is open at version 1, keyed by requirement and scope, and audited."""
    change = open_request(_draft(), request_id="r1", at=AT)
    assert change.request.status is RequestStatus.OPEN
    assert change.request.version == 1
    assert change.request.open_key == policy_key("ISO27001-A.8.5", SCOPE.upper())
    (entry,) = change.audit
    assert (entry.action, entry.actor, entry.request_id) == (AuditAction.REQUESTED, WARDEN, "r1")


def test_dedupe_key_campaign_and_chat_differ_from_policy() -> None:
    """Campaign requests dedupe per period, chat per owner and period."""
    campaign = _draft(source=RequestSource.CAMPAIGN).dedupe_key()
    chat = _draft(source=RequestSource.CHAT).dedupe_key()
    assert campaign == "campaign|ISO27001-A.8.5|2026-Q4"
    assert chat == f"chat|ISO27001-A.8.5|{OWNER}|2026-Q4"


def test_draft_policy_without_scope_refused() -> None:
    """A policy request must name its resource scope."""
    with pytest.raises(ValidationError, match="scope"):
        RequestDraft(**{**_draft().model_dump(), "scope": ""})


def test_submit_by_someone_else_refused() -> None:
    """Only the owner (or one the caller says acts for them) may hand in evidence."""
    opened = open_request(_draft(), request_id="r1", at=AT).request
    with pytest.raises(NotRequestOwner) as refused:
        submit(opened, LINK, ALICE, seen=1)
    assert "owner" in refused.value.user_message
    delegated = submit(opened, LINK, ALICE, seen=1, acts_for_owner=True)
    assert delegated.request.submitted_by == ALICE


def test_submit_kind_not_accepted_refused() -> None:
    """Evidence of a kind the requirement does not accept is refused with the kinds it does."""
    opened = open_request(_draft(), request_id="r1", at=AT).request
    with pytest.raises(EvidenceRefused) as refused:
        submit(opened, LINK, OWNER, seen=1, accepted=[EvidenceKind.ATTESTATION])
    assert "accepts attestation" in refused.value.user_message


def test_approve_by_owner_or_submitter_refused() -> None:
    """Separation of duties: neither the owner nor the submitter may approve."""
    opened = open_request(_draft(), request_id="r1", at=AT).request
    by_delegate = submit(opened, LINK, ALICE, seen=1, acts_for_owner=True).request
    for actor in (OWNER.upper(), ALICE):
        with pytest.raises(SeparationOfDuties):
            decide(by_delegate, [], APPROVE, actor, seen=by_delegate.version)
    with pytest.raises(SeparationOfDuties):
        decide(by_delegate, [], APPROVE, BOB, seen=by_delegate.version, acts_for_owner=True)


def test_double_approval_counted_once() -> None:
    """A reviewer approving twice is refused; the request still needs another approver."""
    journey = Journey(_submitted(approvals=2))
    journey.decide(APPROVE, BOB)
    with pytest.raises(EvidenceRefused) as refused:
        journey.decide(APPROVE, BOB.upper())
    assert "counts once" in refused.value.user_message
    assert journey.request.status is RequestStatus.SUBMITTED
    assert approvers(journey.request, journey.decisions) == [BOB]


def test_two_of_m_approved_after_second_distinct_approval() -> None:
    """N of M: the request is approved when the N-th distinct reviewer approves."""
    journey = Journey(_submitted(approvals=2))
    first = journey.decide(APPROVE, BOB)
    assert first.request.status is RequestStatus.SUBMITTED
    assert first.audit[0].details["approvals"] == 1
    second = journey.decide(APPROVE, CAROL)
    assert second.request.status is RequestStatus.APPROVED
    assert second.request.open_key is None
    assert second.audit[0].details["status"] == "approved"


def test_one_rejection_rejects() -> None:
    """One rejection rejects, even after an approval; its reason is recorded."""
    journey = Journey(_submitted(approvals=2))
    journey.decide(APPROVE, BOB)
    change = journey.decide(Verdict(kind=DecisionKind.REJECT, comment="wrong system"), CAROL)
    assert change.request.status is RequestStatus.REJECTED
    assert change.audit[0].action is AuditAction.REJECTED
    assert change.audit[0].details["reason"] == "wrong system"


def test_reject_without_reason_refused() -> None:
    """A rejection needs a reason."""
    with pytest.raises(ValidationError, match="reason"):
        Verdict(kind=DecisionKind.REJECT, comment="  ")


def test_request_changes_then_resubmit_makes_version_two() -> None:
    """Changes go back to the owner; the resubmission is version 2 and old approvals lapse."""
    journey = Journey(_submitted(approvals=2))
    journey.decide(APPROVE, BOB)
    back = journey.decide(Verdict(kind=DecisionKind.REQUEST_CHANGES, comment="Q4 only"), CAROL)
    assert back.request.status is RequestStatus.CHANGES_REQUESTED
    attestation = Evidence(kind=EvidenceKind.ATTESTATION, text="Backups verified for Q4")
    again = submit(journey.request, attestation, OWNER, seen=journey.request.version)
    assert again.submission is not None and again.submission.version == 2
    journey.request = again.request
    assert approvers(journey.request, journey.decisions) == []
    assert journey.decide(APPROVE, BOB).request.status is RequestStatus.SUBMITTED


def test_submit_while_submitted_refused() -> None:
    """A second submission waits for a decision (or a change request)."""
    request = _submitted()
    with pytest.raises(EvidenceRefused, match="submitted"):
        submit(request, LINK, OWNER, seen=request.version)


def test_stale_version_refused_naming_who_decided() -> None:
    """An action from an older card is refused, telling who changed the request and how."""
    request = _submitted(approvals=1)
    seen = request.version
    approved = Journey(request).decide(APPROVE, BOB).request
    with pytest.raises(StaleRequest) as stale:
        decide(approved, [], Verdict(kind=DecisionKind.REJECT, comment="no"), CAROL, seen=seen)
    assert (stale.value.status, stale.value.by, stale.value.version) == ("approved", BOB, seen + 1)
    assert f"{BOB} changed it at" in stale.value.user_message
    assert "and it is approved" in stale.value.user_message
    assert "Bob Builder changed it" in stale.value.told("Bob Builder")


def test_every_transition_bumps_version() -> None:
    """Each accepted action makes the request one version newer."""
    opened = open_request(_draft(), request_id="r1", at=AT).request
    submitted = submit(opened, LINK, OWNER, seen=1).request
    journey = Journey(submitted)
    journey.decide(APPROVE, BOB)
    assert [opened.version, submitted.version, journey.request.version] == [1, 2, 3]


def test_resolve_by_policy_closes_open_request() -> None:
    """A compliant resource resolves its policy request, by Warden, and frees its key."""
    change = resolve_by_policy(_submitted(), at=AT)
    assert change.request.status is RequestStatus.RESOLVED_BY_POLICY
    assert change.request.open_key is None
    assert (change.audit[0].action, change.audit[0].actor) == (
        AuditAction.RESOLVED_BY_POLICY,
        WARDEN,
    )
    with pytest.raises(EvidenceRefused):
        resolve_by_policy(change.request)


def test_resolve_by_policy_chat_request_refused() -> None:
    """Policy compliance cannot close a request a person asked for."""
    chat = open_request(_draft(source=RequestSource.CHAT), request_id="r2").request
    with pytest.raises(EvidenceRefused):
        resolve_by_policy(chat)


def test_journey_audit_drafts_chain_and_verify() -> None:
    """The drafts of a whole journey chain into a log that verifies."""
    opened = open_request(_draft(approvals=1), request_id="r1", at=AT)
    submitted = submit(opened.request, LINK, OWNER, seen=1, at=AT)
    decided = Journey(submitted.request).decide(APPROVE, BOB)
    chain: list[AuditEntry] = []
    for draft in (*opened.audit, *submitted.audit, *decided.audit):
        append(chain, draft)
    assert verify(chain).ok
    assert [entry.action for entry in chain] == [
        AuditAction.REQUESTED,
        AuditAction.SUBMITTED,
        AuditAction.APPROVED,
    ]


def test_file_evidence_without_hash_refused() -> None:
    """A file is only evidence with its SHA-256, name and size."""
    with pytest.raises(ValidationError, match="SHA-256"):
        Evidence(kind=EvidenceKind.FILE, file_name="a.pdf", file_size=3)
