"""A tally of what Warden holds and has caused, to compare before and after a replay.

Each outbox job is one write Warden makes elsewhere (a card posted or redrawn, a SharePoint
item, a ServiceNow or Sentinel write), committed with the event that caused it; so jobs by
kind, with the audit entries and the records themselves, say what a batch of inbound
requests changed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from core.store.outbox import UNFINISHED
from core.store.schema import incidents, outbox, posted_cards
from core.store.schema_evidence import audit_entries, evidence_requests
from core.store.schema_links import incident_links
from core.store.store import Store

_TABLES: tuple[tuple[str, Any], ...] = (
    ("incidents", incidents),
    ("incident cards", posted_cards),
    ("ServiceNow links", incident_links),
    ("evidence requests", evidence_requests),
    ("audit entries", audit_entries),
)


async def tally(store: Store) -> dict[str, int]:
    """Rows per record (``incidents``, ``audit entries``…) and ``jobs <kind>`` per job kind."""
    counts: dict[str, int] = {}
    async with store.reading() as conn:
        for label, table in _TABLES:
            rows = await conn.execute(select(func.count()).select_from(table))
            counts[label] = int(rows.scalar() or 0)
        by_kind = select(outbox.c.kind, func.count()).group_by(outbox.c.kind)
        for kind, count in await conn.execute(by_kind):
            counts[f"jobs {kind}"] = int(count)
    return counts


async def unfinished(store: Store) -> int:
    """How many outbox jobs wait or run (0 once every caused write is done or dead)."""
    stmt = select(func.count()).where(outbox.c.status.in_(UNFINISHED))
    async with store.reading() as conn:
        return int((await conn.execute(stmt)).scalar() or 0)
