"""Rows of the evidence tables and the records they hold (conversions both ways).

Sealed columns (an attestation's text, a decision's comment) are encrypted and decrypted
here with the store's cipher; times are UNIX seconds in the rows, UTC datetimes outside.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from core.catalog import EvidenceKind
from core.evidence import (
    Decision,
    DecisionKind,
    EvidenceRequest,
    RequestSource,
    RequestStatus,
    Submission,
    Transition,
)
from core.store.store import Store


def request_values(request: EvidenceRequest) -> dict[str, Any]:
    """The ``evidence_requests`` row of ``request`` (``open_key`` set while it is open)."""
    return {
        "id": request.id,
        "requirement_id": request.requirement_id,
        "scope": request.scope,
        "period": request.period,
        "owner": request.owner,
        "requested_by": request.requested_by,
        "source": request.source.value,
        "due": request.due.isoformat(),
        "status": request.status.value,
        "approvals_needed": request.approvals_needed,
        "resources": json.dumps(list(request.resources)),
        "submission": request.submission,
        "submitted_by": request.submitted_by,
        "version": request.version,
        "updated_by": request.updated_by,
        "created_at": request.created_at.timestamp(),
        "updated_at": request.updated_at.timestamp(),
        "open_key": request.open_key,
    }


def request(row: Any) -> EvidenceRequest:
    """The request in an ``evidence_requests`` row."""
    return EvidenceRequest(
        id=row.id,
        requirement_id=row.requirement_id,
        scope=row.scope,
        period=row.period,
        owner=row.owner,
        requested_by=row.requested_by,
        source=RequestSource(row.source),
        due=date.fromisoformat(row.due),
        status=RequestStatus(row.status),
        approvals_needed=row.approvals_needed,
        resources=tuple(json.loads(row.resources)),
        submission=row.submission,
        submitted_by=row.submitted_by,
        version=row.version,
        updated_by=row.updated_by,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )


def submission_values(store: Store, change: Transition) -> dict[str, Any]:
    """The ``evidence_submissions`` row of the submission ``change`` adds (text sealed)."""
    assert change.submission is not None
    values = change.submission.model_dump(exclude={"request_id", "kind", "text", "at"})
    return {
        **values,
        "request_id": change.request.id,
        "kind": change.submission.kind.value,
        "text": store.cipher.encrypt(change.submission.text or ""),
        "at": change.submission.at.timestamp(),
    }


def submission(store: Store, row: Any) -> Submission:
    """The submission in an ``evidence_submissions`` row (text decrypted)."""
    where = f"{row.request_id}#{row.version}"
    return Submission(
        request_id=row.request_id,
        version=row.version,
        kind=EvidenceKind(row.kind),
        text=store.cipher.decrypt(row.text, "evidence_submissions.text", where) or None,
        url=row.url,
        sha256=row.sha256,
        file_name=row.file_name,
        file_size=row.file_size,
        item_id=row.item_id,
        web_url=row.web_url,
        submitted_by=row.submitted_by,
        at=utc(row.at),
    )


def decision_values(store: Store, change: Transition) -> dict[str, Any]:
    """The ``evidence_decisions`` row of the decision ``change`` adds (comment sealed)."""
    assert change.decision is not None
    decision = change.decision
    return {
        "request_id": decision.request_id,
        "submission": decision.submission,
        "kind": decision.kind.value,
        "comment": store.cipher.encrypt(decision.comment),
        "by": decision.by,
        "at": decision.at.timestamp(),
    }


def decision(store: Store, row: Any) -> Decision:
    """The decision in an ``evidence_decisions`` row (comment decrypted)."""
    return Decision(
        request_id=row.request_id,
        submission=row.submission,
        kind=DecisionKind(row.kind),
        comment=store.cipher.decrypt(row.comment, "evidence_decisions.comment", row.id),
        by=row.by,
        at=utc(row.at),
    )


def utc(stamp: float) -> datetime:
    """UNIX seconds as a UTC datetime."""
    return datetime.fromtimestamp(stamp, tz=UTC)
