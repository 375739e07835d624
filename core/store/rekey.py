"""Key rotation: re-encrypt every sealed value under the first key of ``WARDEN_ENCRYPTION_KEYS``.

``rotate`` pages through each sealed column (``schema_sealed.SEALED``) by primary key, one write
transaction per batch. A value is rewritten only when it is not under the first key yet
(values written before encryption was switched on are encrypted), and only if it still holds
what was read: a row that Warden changed meanwhile already carries a value under the first
key, so the rotation never overwrites newer data. Safe while Warden runs, and idempotent: a
second run rewrites nothing. A value that no key decrypts stops the run with
``UnreadablePayload`` naming it; the batches before it stay committed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Connection, func, select, update

from core.crypto import PayloadCipher
from core.store import admin_audit
from core.store.schema_sealed import SEALED
from core.store.store import Store

ROTATE_ACTION = "keys.rotate"


def kind_of(column: Column[Any]) -> str:
    """A sealed column's name in errors and reports: ``table.column``."""
    return f"{column.table.name}.{column.name}"


@dataclass
class Rotation:
    """What a rotation did, per sealed column (``table.column``)."""

    seen: dict[str, int] = field(default_factory=dict)
    rewritten: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Batch:
    column: Column[Any]
    cipher: PayloadCipher
    after: Any
    size: int


async def sealed_counts(store: Store) -> dict[str, int]:
    """How many rows each sealed column has (for a progress display)."""
    counts = {}
    async with store.reading() as conn:
        for column in SEALED:
            total = (await conn.execute(select(func.count()).select_from(column.table))).scalar()
            counts[kind_of(column)] = int(total or 0)
    return counts


async def rotate(
    store: Store,
    *,
    actor: str,
    batch_size: int = 500,
    on_batch: Callable[[str, int], None] | None = None,
) -> Rotation:
    """Re-encrypt every sealed value under the store cipher's first key; record who did it.

    ``on_batch(kind, rows)`` is called after each committed batch.
    """
    report = Rotation()
    for column in SEALED:
        kind = kind_of(column)
        report.seen[kind] = report.rewritten[kind] = 0
        after: Any = None
        while True:
            batch = _Batch(column, store.cipher, after, batch_size)
            seen, rewritten, after = await store.run_write(_rotate_batch, batch)
            report.seen[kind] += seen
            report.rewritten[kind] += rewritten
            if on_batch is not None and seen:
                on_batch(kind, seen)
            if seen < batch_size:
                break
    async with store.writing() as conn:
        await admin_audit.record(
            conn, actor, ROTATE_ACTION, "*", rows=report.seen, rewritten=report.rewritten
        )
    return report


def _rotate_batch(conn: Connection, batch: _Batch) -> tuple[int, int, Any]:
    """One transaction: the next ``size`` rows after ``after``, rewritten where needed."""
    (key,) = batch.column.table.primary_key.columns
    stmt = select(key, batch.column).order_by(key).limit(batch.size)
    if batch.after is not None:
        stmt = stmt.where(key > batch.after)
    rows = conn.execute(stmt).all()
    rewritten = 0
    kind = kind_of(batch.column)
    for row_key, stored in rows:
        fresh = batch.cipher.rotate(stored, kind, row_key)
        if fresh is None:
            continue
        changed = conn.execute(
            update(batch.column.table)
            .where(key == row_key, batch.column == stored)
            .values({batch.column.name: fresh})
        )
        rewritten += changed.rowcount
    return len(rows), rewritten, rows[-1][0] if rows else batch.after
