"""Operators' actions on the outbox's dead-letter queue (``warden outbox …``, ``warden dlq …``):
make a job due again with fresh attempts, or delete it for good. Each action is recorded in
the admin audit in the same transaction.
"""

from __future__ import annotations

import time

from sqlalchemy import update

from core.store import admin_audit
from core.store.outbox import DLQ, PENDING
from core.store.schema import outbox
from core.store.store import Store


async def retry(store: Store, job_id: int, *, actor: str) -> bool:
    """Make a DLQ (or waiting) job due now with fresh attempts; False if no such job."""
    return await _requeue(store, job_id, (*DLQ, PENDING), actor, "outbox.retry")


async def replay(store: Store, job_id: int, *, actor: str) -> bool:
    """Replay one DLQ job (due now, fresh attempts); False when it is not in the DLQ.

    Idempotent: a job already replayed is no longer in the DLQ, so a second call changes
    nothing; the job handlers themselves never repeat work that is done.
    """
    return await _requeue(store, job_id, DLQ, actor, "dlq.replay")


async def replay_all(store: Store, *, actor: str) -> int:
    """Replay every DLQ job; returns how many."""
    now = time.time()
    stmt = (
        update(outbox)
        .where(outbox.c.status.in_(DLQ))
        .values(status=PENDING, attempts=0, next_attempt_at=now, updated_at=now)
    )
    async with store.writing() as conn:
        result = await conn.execute(stmt)
        if result.rowcount:
            await admin_audit.record(conn, actor, "dlq.replay_all", "*", jobs=result.rowcount)
    return int(result.rowcount)


async def purge(store: Store, job_id: int, *, actor: str) -> bool:
    """Delete one DLQ job for good; False when it is not in the DLQ."""
    stmt = outbox.delete().where(outbox.c.id == job_id, outbox.c.status.in_(DLQ))
    async with store.writing() as conn:
        result = await conn.execute(stmt)
        if result.rowcount:
            await admin_audit.record(conn, actor, "dlq.purge", str(job_id))
    return bool(result.rowcount)


async def _requeue(
    store: Store, job_id: int, statuses: tuple[str, ...], actor: str, action: str
) -> bool:
    now = time.time()
    stmt = (
        update(outbox)
        .where(outbox.c.id == job_id, outbox.c.status.in_(statuses))
        .values(status=PENDING, attempts=0, next_attempt_at=now, updated_at=now)
    )
    async with store.writing() as conn:
        result = await conn.execute(stmt)
        if result.rowcount:
            await admin_audit.record(conn, actor, action, str(job_id))
    return bool(result.rowcount)
