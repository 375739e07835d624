"""Incident comments Warden knows, so each Sentinel comment reaches the cards' threads once
and a comment Warden wrote itself is never posted back (no echo).

Relaying a comment records it as known and enqueues one reply job per conversation showing
the incident's card (in order, per conversation), in one transaction: a relay that stops
half-way loses nothing and posts nothing twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, func, select

from core.ingest import card_ordering_key
from core.store import outbox
from core.store.schema import conversations, incident_comments, posted_cards
from core.store.schema import outbox as outbox_table
from core.store.store import Store

COMMENT_JOB = "incident.comment_reply"
"""The outbox job kind that posts a Sentinel comment in a card's thread."""

OWN, RELAYED = "warden", "sentinel"


@dataclass(frozen=True)
class SourceComment:
    """A comment read from the incident's source."""

    comment_id: str
    message: str
    author: str | None
    created: datetime | None


async def remember_own(store: Store, incident_key: str, comment_id: str) -> None:
    """Record a comment Warden wrote, so the relay never posts it back."""
    stmt = store.insert(incident_comments).values(
        incident_key=incident_key, comment_id=comment_id.lower(), origin=OWN, seen_at=time.time()
    )
    async with store.writing() as conn:
        await conn.execute(stmt.on_conflict_do_nothing())


async def known(store: Store, incident_key: str) -> set[str]:
    """The ids (lower-case) of the incident's comments Warden wrote or relayed."""
    stmt = select(incident_comments.c.comment_id).where(
        incident_comments.c.incident_key == incident_key
    )
    async with store.reading() as conn:
        return {str(row[0]) for row in await conn.execute(stmt)}


async def shown_since(store: Store, since: float) -> dict[str, float]:
    """Incidents whose cards changed since ``since``: key → when the first card was posted."""
    stmt = (
        select(posted_cards.c.incident_key, func.min(posted_cards.c.posted_at))
        .where(posted_cards.c.updated_at >= since)
        .group_by(posted_cards.c.incident_key)
    )
    async with store.reading() as conn:
        return {str(row[0]): float(row[1]) for row in await conn.execute(stmt)}


async def relay(store: Store, incident_key: str, comments: list[SourceComment]) -> int:
    """Record ``comments`` as known and enqueue their replies; how many jobs were queued."""

    def write(conn: Connection, _: None) -> int:
        shown = conn.execute(
            select(posted_cards.c.conversation_id).where(
                and_(
                    posted_cards.c.incident_key == incident_key,
                    posted_cards.c.conversation_id.in_(
                        select(conversations.c.id).where(conversations.c.active.is_(True))
                    ),
                )
            )
        )
        targets = sorted(row[0] for row in shown)
        now = time.time()
        rows = []
        for comment in comments:
            inserted = conn.execute(
                store.insert(incident_comments)
                .values(
                    incident_key=incident_key,
                    comment_id=comment.comment_id.lower(),
                    origin=RELAYED,
                    seen_at=now,
                )
                .on_conflict_do_nothing()
            )
            if not inserted.rowcount:
                continue  # another replica relayed it first
            payload = {
                "incident_key": incident_key,
                "comment_id": comment.comment_id,
                "author": comment.author,
                "message": comment.message,
                "created": comment.created.isoformat() if comment.created else None,
            }
            rows += [
                outbox.job_row(
                    COMMENT_JOB,
                    f"comment|{card_ordering_key(incident_key, conversation)}",
                    {**payload, "conversation_id": conversation},
                    cipher=store.cipher,
                    conversation_id=conversation,
                )
                for conversation in targets
            ]
        if rows:
            conn.execute(outbox_table.insert(), rows)
        return len(rows)

    return await store.run_write(write, None)
