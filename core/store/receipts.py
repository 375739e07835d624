"""Receipts of inbound deliveries that carry no idempotency key of their own.

Teams may deliver an activity again (a retry after a timeout, a replay); the pair of its
conversation and activity id names it. A receipt is written before the activity is acted on,
and forgotten when acting failed, so a redelivery is acted on once. Receipts share the table
of webhook receipts (``webhook_receipts``) and its retention (``outbox.prune``).
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from core.store.engine import insert_for
from core.store.schema import webhook_receipts
from core.store.store import Store

ACTIVITY_KIND = "teams:activity"
"""The ``incident_key`` column of an activity's receipt (the table's name for its source)."""


def activity_key(conversation_id: str, activity_id: str) -> str:
    """The receipt key of one activity: a hash, so it fits whatever the ids' length."""
    digest = hashlib.sha256(f"{conversation_id}\n{activity_id}".encode()).hexdigest()
    return f"activity:{digest[:48]}"


async def first_deliveries(store: Store, deliveries: Sequence[tuple[str, str]]) -> list[bool]:
    """Record each ``(key, what)`` in one transaction; for each, False when its key was
    recorded before (or earlier in ``deliveries``): that delivery is a repeat."""
    return await store.run_write(_record, deliveries)


def _record(conn: Connection, deliveries: Sequence[tuple[str, str]]) -> list[bool]:
    now = time.time()
    rows: dict[str, dict[str, object]] = {}
    for key, what in deliveries:
        rows.setdefault(
            key,
            {
                "webhook_id": key,
                "incident_key": ACTIVITY_KIND,
                "incident_name": what[:256],
                "received_at": now,
            },
        )
    inserted = conn.execute(_insert(conn.dialect.name), list(rows.values()))
    fresh = {row.webhook_id for row in inserted}
    answers = []
    for key, _ in deliveries:
        answers.append(key in fresh)
        fresh.discard(key)  # a second delivery of the same key in the batch is a repeat
    return answers


async def forget(store: Store, key: str) -> None:
    """Remove ``key``'s receipt (acting on the delivery failed: a retry must act again)."""
    stmt = webhook_receipts.delete().where(webhook_receipts.c.webhook_id == key)
    async with store.writing() as conn:
        await conn.execute(stmt)


@functools.cache
def _insert(dialect: str) -> Any:
    """The receipts' INSERT, one statement for any number of rows (its compiled form is
    cached): new keys inserted, known ones skipped, the inserted keys returned."""
    insert: Any = insert_for(dialect, webhook_receipts)
    return insert.on_conflict_do_nothing().returning(webhook_receipts.c.webhook_id)
