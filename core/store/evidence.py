"""Evidence requests in the store, with the append-only audit chain written alongside.

Every change runs the pure workflow of :mod:`core.evidence` inside one write transaction and
writes, in that transaction: the request, the submission or decision it adds, its entries on
the audit chain (``audit_entries``, sealed through ``core.audit_chain.append``), one
``audit.mirror`` outbox job per entry, and any follow-up jobs the caller passes (card
redraws). A refused action raises its ``EvidenceRefused`` and writes nothing.

Evidence writes are serialised: on SQLite by the store's one writer, on PostgreSQL by a
transaction-level advisory lock taken first thing. So the chain never forks (each entry
links to the last committed one), a dedupe key never opens two requests, and a request is
never changed by two actions at once. The chain's ``seq`` is the primary key as a backstop.

The chain and its mirror jobs are :mod:`core.store.evidence_audit`; what Warden itself records
on a request (filed, written back, sent back) is :mod:`core.store.evidence_filing`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import JsonValue
from sqlalchemy import Connection, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.catalog import EvidenceKind
from core.errors import RequestNotFound
from core.evidence import (
    Decision,
    Evidence,
    EvidenceRequest,
    RequestDraft,
    RequestStatus,
    Submission,
    Transition,
    Verdict,
    policy_key,
)
from core.evidence import decide as decide_rule
from core.evidence import open_request as open_rule
from core.evidence import resolve_by_policy as resolve_rule
from core.evidence import submit as submit_rule
from core.store import evidence_rows as convert
from core.store.evidence_audit import FollowUp, record_transition, serialise_writes
from core.store.schema_evidence import evidence_decisions, evidence_requests, evidence_submissions
from core.store.store import Store


@dataclass(frozen=True)
class RequestRecord:
    """A request with all its submissions and decisions, oldest first (what a card shows)."""

    request: EvidenceRequest
    submissions: tuple[Submission, ...] = field(default=())
    decisions: tuple[Decision, ...] = field(default=())


async def open_request(
    store: Store, draft: RequestDraft, *, jobs: Sequence[FollowUp] = ()
) -> tuple[EvidenceRequest, bool]:
    """Open a request for ``draft``, or return the one already open for its dedupe key.

    ``created`` is False when the request existed (nothing is written then, not even
    ``jobs``). Safe when several calls for one key run at once: exactly one creates.
    """

    def write(conn: Connection, _: None) -> tuple[EvidenceRequest, bool]:
        serialise_writes(conn)
        existing = select_request(conn, evidence_requests.c.open_key == draft.dedupe_key())
        if existing is not None:
            return existing, False
        change = open_rule(draft)
        conn.execute(evidence_requests.insert().values(**convert.request_values(change.request)))
        record_transition(conn, store, change, jobs)
        return change.request, True

    return await store.run_write(write, None)


async def get(store: Store, request_id: str) -> EvidenceRequest | None:
    """The request with this id, or ``None``."""
    async with store.reading() as conn:
        return await _read_request(conn, request_id)


async def record(store: Store, request_id: str) -> RequestRecord | None:
    """The request with its submissions and decisions, or ``None``."""
    async with store.reading() as conn:
        request = await _read_request(conn, request_id)
        if request is None:
            return None
        subs = await conn.execute(
            select(evidence_submissions)
            .where(evidence_submissions.c.request_id == request_id)
            .order_by(evidence_submissions.c.version)
        )
        decs = await conn.execute(
            select(evidence_decisions)
            .where(evidence_decisions.c.request_id == request_id)
            .order_by(evidence_decisions.c.id)
        )
        submissions = tuple(convert.submission(store, r) for r in subs)
        decisions = tuple(convert.decision(store, r) for r in decs)
    return RequestRecord(request, submissions, decisions)


async def _read_request(conn: AsyncConnection, request_id: str) -> EvidenceRequest | None:
    stmt = select(evidence_requests).where(evidence_requests.c.id == request_id)
    row = (await conn.execute(stmt)).first()
    return None if row is None else convert.request(row)


async def submit(
    store: Store,
    request_id: str,
    evidence: Evidence,
    actor: str,
    *,
    seen: int,
    acts_for_owner: bool = False,
    accepted: Sequence[EvidenceKind] | None = None,
    jobs: Sequence[FollowUp] = (),
    also: Callable[[Connection, Transition], None] | None = None,
) -> Transition:
    """Record ``evidence`` as the request's next submission (rules: ``core.evidence.submit``).

    ``also(conn, change)`` writes more in the same transaction (e.g. what a chat file became).
    """

    def write(conn: Connection, _: None) -> Transition:
        serialise_writes(conn)
        request = _existing_request(conn, request_id)
        change = submit_rule(
            request, evidence, actor, seen=seen, acts_for_owner=acts_for_owner, accepted=accepted
        )
        assert change.submission is not None
        update_request(conn, request, change.request)
        conn.execute(
            evidence_submissions.insert().values(**convert.submission_values(store, change))
        )
        record_transition(conn, store, change, jobs)
        if also is not None:
            also(conn, change)
        return change

    return await store.run_write(write, None)


async def decide(
    store: Store,
    request_id: str,
    verdict: Verdict,
    actor: str,
    *,
    seen: int,
    acts_for_owner: bool = False,
    jobs: Sequence[FollowUp] = (),
    allowed_by: Mapping[str, JsonValue] | None = None,
) -> Transition:
    """Record a reviewer's verdict on the current submission (``core.evidence.decide``);
    ``allowed_by``: the role grant that let ``actor`` decide, kept in the audit entry."""

    def write(conn: Connection, _: None) -> Transition:
        serialise_writes(conn)
        request = _existing_request(conn, request_id)
        rows = conn.execute(
            select(evidence_decisions)
            .where(
                evidence_decisions.c.request_id == request_id,
                evidence_decisions.c.submission == request.submission,
            )
            .order_by(evidence_decisions.c.id)
        )
        so_far = [convert.decision(store, row) for row in rows]
        change = decide_rule(
            request,
            so_far,
            verdict,
            actor,
            seen=seen,
            acts_for_owner=acts_for_owner,
            allowed_by=allowed_by,
        )
        assert change.decision is not None
        update_request(conn, request, change.request)
        conn.execute(evidence_decisions.insert().values(**convert.decision_values(store, change)))
        record_transition(conn, store, change, jobs)
        return change

    return await store.run_write(write, None)


async def resolve_by_policy(
    store: Store, requirement_id: str, scope: str, *, jobs: Sequence[FollowUp] = ()
) -> EvidenceRequest | None:
    """Resolve the open policy request for (requirement, scope), now compliant.

    Returns the resolved request, or ``None`` when none was open (a repeat changes nothing).
    """

    def write(conn: Connection, _: None) -> EvidenceRequest | None:
        serialise_writes(conn)
        key = policy_key(requirement_id, scope)
        request = select_request(conn, evidence_requests.c.open_key == key)
        if request is None:
            return None
        change = resolve_rule(request)
        update_request(conn, request, change.request)
        record_transition(conn, store, change, jobs)
        return change.request

    return await store.run_write(write, None)


async def list_requests(
    store: Store,
    *,
    requirement: str | None = None,
    period: str | None = None,
    status: RequestStatus | None = None,
) -> list[EvidenceRequest]:
    """Requests matching every filter given, oldest first."""
    stmt = select(evidence_requests).order_by(
        evidence_requests.c.created_at, evidence_requests.c.id
    )
    if requirement is not None:
        stmt = stmt.where(evidence_requests.c.requirement_id == requirement)
    if period is not None:
        stmt = stmt.where(evidence_requests.c.period == period)
    if status is not None:
        stmt = stmt.where(evidence_requests.c.status == status.value)
    async with store.reading() as conn:
        return [convert.request(row) for row in await conn.execute(stmt)]


def _existing_request(conn: Connection, request_id: str) -> EvidenceRequest:
    request = select_request(conn, evidence_requests.c.id == request_id)
    if request is None:
        raise RequestNotFound(f"no evidence request {request_id}")
    return request


def select_request(conn: Connection, where: Any) -> EvidenceRequest | None:
    """The request matching ``where`` on an open transaction, or None."""
    row = conn.execute(select(evidence_requests).where(where)).first()
    return None if row is None else convert.request(row)


def update_request(conn: Connection, before: EvidenceRequest, after: EvidenceRequest) -> None:
    """Write ``after`` over ``before`` on an open, serialised evidence transaction."""
    values = convert.request_values(after)
    for fixed in ("id", "created_at"):
        values.pop(fixed)
    done = conn.execute(
        update(evidence_requests)
        .where(
            evidence_requests.c.id == before.id,
            evidence_requests.c.version == before.version,
        )
        .values(**values)
    )
    assert done.rowcount == 1, "evidence writes are serialised; the version cannot move"


EVIDENCE_FILE_JOB = "evidence.file"
"""Files a request's unfiled links and attestations in SharePoint: ``{"request",
"conversation_id"}`` (``graph.evidence_sync``)."""

EVIDENCE_LIST_JOB = "evidence.list"
"""Brings the request's *Evidence Requests* list item up to date: ``{"request"}``."""


def filing_jobs(request_id: str, conversation_id: str) -> list[FollowUp]:
    """The jobs a submission causes: file it, then update the request's list item."""
    payload = {"request": request_id, "conversation_id": conversation_id}
    return [
        FollowUp(EVIDENCE_FILE_JOB, f"evidence-file|{request_id}", payload),
        list_job(request_id),
    ]


def list_job(request_id: str) -> FollowUp:
    """The ``evidence.list`` job of one state change (ordered per request)."""
    return FollowUp(EVIDENCE_LIST_JOB, f"evidence-list|{request_id}", {"request": request_id})


__all__ = [
    "EVIDENCE_FILE_JOB",
    "EVIDENCE_LIST_JOB",
    "RequestRecord",
    "decide",
    "filing_jobs",
    "get",
    "list_job",
    "list_requests",
    "open_request",
    "record",
    "resolve_by_policy",
    "submit",
]
