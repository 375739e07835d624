"""The evidence audit chain in the store: appending entries, reading them, mirroring them.

Every evidence change appends its entries to ``audit_entries`` (sealed through
``core.audit_chain.append``) in the change's own transaction, with one ``audit.mirror`` outbox
job per entry and any follow-up jobs the caller passes. Evidence writes are serialised
(``serialise_writes``): on SQLite by the store's one writer, on PostgreSQL by a
transaction-level advisory lock, so the chain never forks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import JsonValue
from sqlalchemy import Connection, select, text, update

from core.audit_chain import AuditAction, AuditDraft, AuditEntry, append
from core.crypto import PayloadCipher
from core.evidence import WARDEN, Transition
from core.store import outbox
from core.store.schema import outbox as outbox_table
from core.store.schema_evidence import audit_entries as audit_table
from core.store.schema_evidence import evidence_requests
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


async def audit_entries(
    store: Store, after_seq: int = 0, limit: int | None = None
) -> list[AuditEntry]:
    """The audit chain from ``after_seq + 1`` on, in order (at most ``limit`` entries)."""
    stmt = select(audit_table.c.seq, audit_table.c.body).where(audit_table.c.seq > after_seq)
    stmt = stmt.order_by(audit_table.c.seq).limit(limit)
    async with store.reading() as conn:
        rows = (await conn.execute(stmt)).all()
    return [chain_entry(store, row.seq, row.body) for row in rows]


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
    chain = [] if last is None else [chain_entry(store, last.seq, last.body)]
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


def chain_entry(store: Store, seq: int, body: str) -> AuditEntry:
    """Chain entry ``seq`` from its stored, encrypted ``body``."""
    return AuditEntry.model_validate_json(store.cipher.decrypt(body, "audit_entries.body", seq))


def by_warden(
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
