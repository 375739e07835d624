"""One replica at a time: leadership for pollers and schedulers.

On PostgreSQL a named job runs only on the replica holding the session-level advisory lock
``pg_try_advisory_lock(hash(name))``; the lock lives on one dedicated connection, so when that
replica dies its connection closes, the lock is released, and another replica takes over at
its next try. On SQLite (one replica by design) the lock is always granted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from core.store.store import Store

log = logging.getLogger(__name__)


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    digest = hashlib.sha256(f"warden:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.asynccontextmanager
async def leadership(store: Store, name: str) -> AsyncIterator[bool]:
    """Try once to lead ``name``; yields True while this replica holds the lock."""
    if store.dialect != "postgresql":
        yield True
        return
    async with store.engine.connect() as conn:
        held = bool(
            await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": lock_key(name)})
        )
        await conn.commit()
        try:
            yield held
        finally:
            if held:
                with contextlib.suppress(SQLAlchemyError, OSError):
                    await conn.execute(
                        text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key(name)}
                    )
                    await conn.commit()


async def run_as_leader(
    store: Store,
    name: str,
    work: Callable[[], Awaitable[None]],
    *,
    retry_seconds: float = 5.0,
) -> None:
    """Run ``work`` whenever this replica leads ``name``; otherwise try again later.

    ``work`` should return when its round is done (a poll, a reconcile step); the lock is
    held only while it runs. Runs until cancelled.
    """
    while True:
        try:
            async with leadership(store, name) as leading:
                if leading:
                    await work()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("leadership of %s lost or unavailable: %s", name, type(exc).__name__)
        await asyncio.sleep(retry_seconds)


@contextlib.asynccontextmanager
async def leading(
    store: Store, name: str, work: Callable[[], Awaitable[None]], *, every: float
) -> AsyncIterator[None]:
    """Run ``run_as_leader(store, name, work)`` in the background for the ``with`` block."""
    task = asyncio.create_task(run_as_leader(store, name, work, retry_seconds=every))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
