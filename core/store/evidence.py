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
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import JsonValue
from sqlalchemy import Connection, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.audit_chain import AuditAction, AuditDraft, AuditEntry, append
from core.catalog import EvidenceKind
from core.crypto import PayloadCipher
from core.errors import EvidenceRefused, RequestNotFound
from core.evidence import (
    WARDEN,
    Decision,
    DecisionKind,
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
from core.store import outbox
from core.store.schema import audit_entries as audit_table
from core.store.schema import evidence_decisions, evidence_requests, evidence_submissions
from core.store.schema import outbox as outbox_table
from core.store.store import Store

AUDIT_MIRROR_JOB = "audit.mirror"
"""The outbox job kind that copies one audit entry to SharePoint's Audit Log list.

Its payload is ``{"seq": n, "requestId": id}``; read the entry with
``audit_entries(store, after_seq=n - 1, limit=1)`` and call ``mark_mirrored`` when done."""

AUDIT_ORDERING_KEY = "audit|chain"
"""All mirror jobs share one ordering key, so entries reach SharePoint in chain order."""

CHAIN_LOCK = 0x5741524445_41  # "WARDEA": the advisory lock that serialises evidence writes


@dataclass(frozen=True)
class FollowUp:
    """Another outbox job to write in the same transaction as the change (e.g. a card)."""

    kind: str
    ordering_key: str
    payload: dict[str, Any]
    conversation_id: str | None = None

    def row(self, cipher: PayloadCipher) -> dict[str, Any]:
        """The job's outbox row (``outbox.job_row``), its payload sealed by ``cipher``."""
        return outbox.job_row(
            self.kind,
            self.ordering_key,
            self.payload,
            cipher=cipher,
            conversation_id=self.conversation_id,
        )


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


async def audit_entries(
    store: Store, after_seq: int = 0, limit: int | None = None
) -> list[AuditEntry]:
    """The audit chain from ``after_seq + 1`` on, in order (at most ``limit`` entries)."""
    stmt = select(audit_table.c.seq, audit_table.c.body).where(audit_table.c.seq > after_seq)
    stmt = stmt.order_by(audit_table.c.seq).limit(limit)
    async with store.reading() as conn:
        rows = (await conn.execute(stmt)).all()
    return [_entry(store, row.seq, row.body) for row in rows]


async def mark_mirrored(store: Store, seq: int, item_id: str) -> bool:
    """Remember that entry ``seq`` is the Audit Log list's item ``item_id``.

    True the first time; False when it was already marked (a job run twice changes nothing)
    or no such entry exists.
    """
    stmt = (
        update(audit_table)
        .where(audit_table.c.seq == seq, audit_table.c.mirrored_at.is_(None))
        .values(mirrored_at=datetime.now(UTC).timestamp(), item_id=item_id)
    )
    async with store.writing() as conn:
        return bool((await conn.execute(stmt)).rowcount)


def serialise_writes(conn: Connection) -> None:
    """Take the evidence lock for this transaction (SQLite's one writer already serialises)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})


def record_transition(
    conn: Connection, store: Store, change: Transition, jobs: Sequence[FollowUp]
) -> None:
    """Append the change's audit drafts to the chain, with a mirror job each, and ``jobs``."""
    append_audit(conn, store, change.audit, jobs)


def append_audit(
    conn: Connection, store: Store, drafts: Sequence[AuditDraft], jobs: Sequence[FollowUp]
) -> None:
    """Append ``drafts`` to the chain, with a mirror job each, and ``jobs``."""
    last = conn.execute(
        select(audit_table.c.seq, audit_table.c.body).order_by(audit_table.c.seq.desc()).limit(1)
    ).first()
    chain = [] if last is None else [_entry(store, last.seq, last.body)]
    rows = [_chain_row(store, append(chain, draft)) for draft in drafts]
    conn.execute(audit_table.insert(), rows)
    job_rows = [
        outbox.job_row(
            AUDIT_MIRROR_JOB,
            AUDIT_ORDERING_KEY,
            {"seq": row["seq"], "requestId": row["request_id"]},
            cipher=store.cipher,
        )
        for row in rows
    ]
    job_rows += [job.row(store.cipher) for job in jobs]
    conn.execute(outbox_table.insert(), job_rows)


def _chain_row(store: Store, entry: AuditEntry) -> dict[str, Any]:
    body = json.dumps(entry.to_json(), separators=(",", ":"), ensure_ascii=False)
    return {
        "seq": entry.seq,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
        "body": store.cipher.encrypt(body),
        "request_id": entry.request_id,
        "mirrored_at": None,
        "item_id": None,
    }


def _entry(store: Store, seq: int, body: str) -> AuditEntry:
    return AuditEntry.model_validate_json(store.cipher.decrypt(body, "audit_entries.body", seq))


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


async def record_filed(
    store: Store,
    request_id: str,
    version: int,
    filed: dict[str, Any],
    *,
    jobs: Sequence[FollowUp] = (),
) -> bool:
    """Record where submission ``version`` was filed (``sha256``, ``file_size``, ``item_id``,
    ``web_url``, ``file_name``), with ``jobs``; False (nothing written) if already recorded."""

    def write(conn: Connection, _: None) -> bool:
        serialise_writes(conn)
        done = conn.execute(
            update(evidence_submissions)
            .where(
                evidence_submissions.c.request_id == request_id,
                evidence_submissions.c.version == version,
                evidence_submissions.c.item_id.is_(None),
            )
            .values(**filed)
        )
        if not done.rowcount:
            return False
        details: dict[str, JsonValue] = {
            "submission": version,
            "itemId": filed.get("item_id"),
            "sha256": filed.get("sha256"),
            "fileName": filed.get("file_name"),
            "size": filed.get("file_size"),
        }
        append_audit(conn, store, [_by_warden(conn, request_id, AuditAction.FILED, details)], jobs)
        return True

    return await store.run_write(write, None)


async def record_written_back(
    store: Store, request_id: str, system: str, details: dict[str, JsonValue]
) -> bool:
    """Append a ``written_back`` entry: Warden wrote the request's outcome to ``system``
    (``azure-policy``, ``servicenow``) for ``details["submission"]``. Once per system and
    submission, so a job run again adds nothing; False when it was recorded already."""

    def write(conn: Connection, _: None) -> bool:
        serialise_writes(conn)
        rows = conn.execute(
            select(audit_table.c.seq, audit_table.c.body).where(
                audit_table.c.request_id == request_id
            )
        ).all()
        for row in rows:
            entry = _entry(store, row.seq, row.body)
            if (
                entry.action is AuditAction.WRITTEN_BACK
                and entry.details.get("system") == system
                and entry.details.get("submission") == details.get("submission")
            ):
                return False
        said = {"system": system, **details}
        append_audit(
            conn, store, [_by_warden(conn, request_id, AuditAction.WRITTEN_BACK, said)], []
        )
        return True

    return await store.run_write(write, None)


def _by_warden(
    conn: Connection, request_id: str, action: AuditAction, details: dict[str, JsonValue]
) -> AuditDraft:
    """An audit draft of something Warden itself did to the request."""
    requirement = conn.execute(
        select(evidence_requests.c.requirement_id).where(evidence_requests.c.id == request_id)
    ).scalar_one()
    return AuditDraft(
        actor=WARDEN,
        action=action,
        request_id=request_id,
        requirement_id=requirement,
        details=details,
    )


async def send_back(
    store: Store, request_id: str, version: int, reason: str, *, jobs: Sequence[FollowUp] = ()
) -> bool:
    """Warden could not file submission ``version``: send the request back to its owner with
    ``reason`` (changes requested by Warden), so they hand in something it can file.

    False when that submission is no longer the one under review (a reviewer decided first,
    or a newer version came in): nothing changes then.
    """
    request = await get(store, request_id)
    if (
        request is None
        or request.status is not RequestStatus.SUBMITTED
        or request.submission != version
    ):
        return False
    verdict = Verdict(kind=DecisionKind.REQUEST_CHANGES, comment=reason)
    try:
        await decide(store, request.id, verdict, WARDEN, seen=request.version, jobs=jobs)
    except EvidenceRefused:  # the request moved on since it was read
        return False
    return True


__all__ = [
    "AUDIT_MIRROR_JOB",
    "AUDIT_ORDERING_KEY",
    "EVIDENCE_FILE_JOB",
    "EVIDENCE_LIST_JOB",
    "FollowUp",
    "RequestRecord",
    "audit_entries",
    "decide",
    "filing_jobs",
    "get",
    "list_job",
    "list_requests",
    "mark_mirrored",
    "open_request",
    "record",
    "record_filed",
    "record_written_back",
    "resolve_by_policy",
    "send_back",
    "submit",
]
