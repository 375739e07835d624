"""Receipts of inbound deliveries that carry no idempotency key of their own.

Teams may deliver an activity again (a retry after a timeout, a replay); the pair of its
conversation and activity id names it. A receipt is written before the activity is acted on,
and forgotten when acting failed, so a redelivery is acted on once. Receipts share the table
of webhook receipts (``webhook_receipts``) and its retention (``outbox.purge``).
"""

from __future__ import annotations

import hashlib
import time

from core.store.schema import webhook_receipts
from core.store.store import Store

ACTIVITY_KIND = "teams:activity"
"""The ``incident_key`` column of an activity's receipt (the table's name for its source)."""


def activity_key(conversation_id: str, activity_id: str) -> str:
    """The receipt key of one activity: a hash, so it fits whatever the ids' length."""
    digest = hashlib.sha256(f"{conversation_id}\n{activity_id}".encode()).hexdigest()
    return f"activity:{digest[:48]}"


async def first_delivery(store: Store, key: str, what: str) -> bool:
    """Record ``key``; False when it was recorded before (the delivery is a repeat)."""
    stmt = store.insert(webhook_receipts).values(
        webhook_id=key,
        incident_key=ACTIVITY_KIND,
        incident_name=what[:256],
        received_at=time.time(),
    )
    async with store.writing() as conn:
        result = await conn.execute(stmt.on_conflict_do_nothing())
    return bool(result.rowcount)


async def forget(store: Store, key: str) -> None:
    """Remove ``key``'s receipt (acting on the delivery failed: a retry must act again)."""
    stmt = webhook_receipts.delete().where(webhook_receipts.c.webhook_id == key)
    async with store.writing() as conn:
        await conn.execute(stmt)
