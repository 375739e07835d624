"""The administration audit: an append-only record of who changed what Warden does.

Subscriptions made and dropped in Teams, and dead-letter replays, retries and purges from
the command line, are recorded with the actor (a Teams user's Entra object id, or the
operating-system user and host of the command line), the time and the target.
"""

from __future__ import annotations

import getpass
import json
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.store.schema import admin_audit

if TYPE_CHECKING:
    from core.store.store import Store


@dataclass(frozen=True)
class AdminEntry:
    """One recorded administrative action."""

    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]


def operator() -> str:
    """The actor of a command-line action: ``os:<user>@<host>``."""
    try:
        user = getpass.getuser()
    except OSError:
        user = "unknown"
    return f"os:{user}@{socket.gethostname()}"


async def record(
    conn: AsyncConnection, actor: str, action: str, target: str, **details: Any
) -> None:
    """Append one entry inside the caller's transaction (with the change it records)."""
    await conn.execute(
        admin_audit.insert().values(
            at=time.time(),
            actor=actor,
            action=action,
            target=target,
            details=json.dumps(details, sort_keys=True, separators=(",", ":")),
        )
    )


async def entries(store: Store, limit: int = 100) -> list[AdminEntry]:
    """The newest entries, newest first."""
    stmt = select(admin_audit).order_by(admin_audit.c.id.desc()).limit(limit)
    async with store.reading() as conn:
        rows = (await conn.execute(stmt)).all()
    return [
        AdminEntry(
            datetime.fromtimestamp(r.at, tz=timezone.utc),
            r.actor,
            r.action,
            r.target,
            json.loads(r.details),
        )
        for r in rows
    ]
