"""What Warden itself records on evidence requests: where a submission was filed, what was
written back to another system, and a submission sent back because it could not be filed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import JsonValue
from sqlalchemy import Connection, select, update

from core.audit_chain import AuditAction
from core.errors import EvidenceRefused
from core.evidence import WARDEN, DecisionKind, RequestStatus, Verdict
from core.store.evidence import decide, get
from core.store.evidence_audit import (
    FollowUp,
    append_audit,
    by_warden,
    chain_entry,
    serialise_writes,
)
from core.store.schema_evidence import audit_entries as audit_table
from core.store.schema_evidence import evidence_submissions
from core.store.store import Store


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
        append_audit(conn, store, [by_warden(conn, request_id, AuditAction.FILED, details)], jobs)
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
            entry = chain_entry(store, row.seq, row.body)
            if (
                entry.action is AuditAction.WRITTEN_BACK
                and entry.details.get("system") == system
                and entry.details.get("submission") == details.get("submission")
            ):
                return False
        said = {"system": system, **details}
        append_audit(conn, store, [by_warden(conn, request_id, AuditAction.WRITTEN_BACK, said)], [])
        return True

    return await store.run_write(write, None)


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
