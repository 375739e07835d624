"""Card redraws: a card job for every active conversation showing an incident.

Whatever changes what an incident's card shows (a triage action, a link to an ITSM record)
calls ``redraw_cards`` in its own write transaction, so the cards follow the change.
"""

from __future__ import annotations

from sqlalchemy import Connection, and_, bindparam, select

from core.ingest import CARD_JOB, card_ordering_key
from core.store import outbox
from core.store.schema import conversations, posted_cards
from core.store.schema import outbox as outbox_table
from core.store.store import Store

_SHOWING = select(posted_cards.c.conversation_id).where(
    and_(
        posted_cards.c.incident_key == bindparam("incident_key"),
        posted_cards.c.conversation_id.in_(
            select(conversations.c.id).where(conversations.c.active.is_(True))
        ),
    )
)
_WAITING = select(outbox_table.c.ordering_key).where(
    outbox_table.c.status == outbox.PENDING,
    outbox_table.c.kind == CARD_JOB,
    outbox_table.c.ordering_key.in_(bindparam("keys", expanding=True)),
)


def redraw_cards(
    conn: Connection, store: Store, incident_key: str, skip: str | None = None
) -> None:
    """A card job for each active conversation showing the incident (none already waiting)."""
    targets = {row[0] for row in conn.execute(_SHOWING, {"incident_key": incident_key})} - {skip}
    if not targets:
        return
    keys = {card_ordering_key(incident_key, conversation): conversation for conversation in targets}
    already = {row[0] for row in conn.execute(_WAITING, {"keys": list(keys)})}
    rows = [
        outbox.job_row(
            CARD_JOB,
            key,
            {"incident_key": incident_key, "conversation_id": conversation},
            cipher=store.cipher,
            conversation_id=conversation,
        )
        for key, conversation in sorted(keys.items())
        if key not in already
    ]
    if rows:
        conn.execute(outbox_table.insert(), rows)
