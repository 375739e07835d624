"""Pollers' checkpoints: a named value that moves only after the work it covers is durable."""

from __future__ import annotations

import time

from sqlalchemy import select

from core.store.schema import checkpoints
from core.store.store import Store


async def load(store: Store, name: str) -> str | None:
    """The checkpoint's value, or ``None`` before the first save."""
    stmt = select(checkpoints.c.value).where(checkpoints.c.name == name)
    async with store.reading() as conn:
        value = (await conn.execute(stmt)).scalar()
    return None if value is None else str(value)


async def save(store: Store, name: str, value: str) -> None:
    """Move the checkpoint to ``value`` (call only once its work is committed)."""
    values = {"value": value, "updated_at": time.time()}
    stmt = store.insert(checkpoints).values(name=name, **values)
    stmt = stmt.on_conflict_do_update(index_elements=["name"], set_=values)
    async with store.writing() as conn:
        await conn.execute(stmt)
