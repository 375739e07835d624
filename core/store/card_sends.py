"""Card posts in flight: what Warden was posting where, until Teams' answer is recorded.

The Bot Connector takes no idempotency key, so a post that Teams accepted but whose answer
was lost (the process died, the connection broke) cannot be told apart from one that never
arrived. Before a card is posted, a row here says so, in its own commit, with a unique
marker that also travels inside the card. When the activity id is recorded the row goes, in
the same transaction. A row still here when the card's job runs again means the earlier post
is ambiguous: delivery first looks for the marker in the conversation.

Rows name a card by ``incident_key``: an incident's key, for an alert card in the
auditors' channel ``audit:`` and the key of the alerts it shows (``bot.outside_changes``),
for an evidence request's card ``evidence:``, the request id and the role
(``bot.evidence_delivery``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlalchemy import Column, ColumnElement, Connection, Float, String, Table, and_, delete
from sqlalchemy.sql import Executable

from core.store import outbox
from core.store.outbox import Job
from core.store.schema import metadata, posted_cards
from core.store.sql import Statement
from core.store.store import Store

card_sends = Table(
    "card_sends",
    metadata,
    Column("incident_key", String(1024), primary_key=True),
    Column("conversation_id", String(512), primary_key=True),
    Column("marker", String(64), nullable=False),
    Column("version", String(128), nullable=False),
    Column("started_at", Float, nullable=False),
)


_STARTED = Statement(
    "SELECT marker, version, started_at FROM card_sends "
    "WHERE incident_key = :incident_key AND conversation_id = :conversation_id"
)


@dataclass(frozen=True)
class CardSend:
    """A post that was started: its marker, the version it carried and when it began."""

    marker: str
    version: str
    started_at: float


def new_marker() -> str:
    """A marker no other post carries (32 hex digits)."""
    return uuid.uuid4().hex


def _where(incident_key: str, conversation_id: str) -> ColumnElement[bool]:
    return and_(
        card_sends.c.incident_key == incident_key,
        card_sends.c.conversation_id == conversation_id,
    )


async def started(store: Store, incident_key: str, conversation_id: str) -> CardSend | None:
    """The post of the incident's card into the conversation that is still unanswered."""
    params = {"incident_key": incident_key, "conversation_id": conversation_id}
    rows = (await store.read(_STARTED, params)).rows
    return CardSend(*rows[0]) if rows else None


async def start(
    store: Store,
    incident_key: str,
    conversation_id: str,
    marker: str,
    version: str,
    *,
    job: Job | None = None,
) -> CardSend:
    """Commit that a post carrying ``marker`` is about to leave (before it does).

    With ``job``, only while that job's lease is still this worker's: ``LeaseLost`` when
    another worker claimed it meanwhile (it may be posting this very card).
    """
    send = CardSend(marker, version, time.time())
    values = {"marker": marker, "version": version, "started_at": send.started_at}
    stmt = store.insert(card_sends).values(
        incident_key=incident_key, conversation_id=conversation_id, **values
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["incident_key", "conversation_id"], set_=values
    )

    def write(conn: Connection, _: None) -> None:
        if job is not None:
            outbox.hold(conn, job)
        conn.execute(stmt)

    await store.run_write(write, None)  # one hop to SQLite's writer thread, not one a statement
    return send


async def settle(
    store: Store,
    incident_key: str,
    conversation_id: str,
    activity_id: str,
    version: str,
    *,
    job: Job | None = None,
) -> None:
    """Record where the card now sits, and that no post of it is in flight, in one commit.

    With ``job``, only while its lease is still this worker's (``LeaseLost`` otherwise): the
    worker that claimed the job since decides from what it reads, unmoved by this one.
    """
    now = time.time()
    values = {"activity_id": activity_id, "version": version, "updated_at": now}
    upsert = store.insert(posted_cards).values(
        incident_key=incident_key, conversation_id=conversation_id, posted_at=now, **values
    )
    upsert = upsert.on_conflict_do_update(
        index_elements=["incident_key", "conversation_id"], set_=values
    )
    await record(store, upsert, (incident_key, conversation_id), job=job)


async def refused(
    store: Store, incident_key: str, conversation_id: str, *, job: Job | None = None
) -> None:
    """Forget the post in flight: Teams answered it with a refusal, so no card was made and
    the next attempt posts without looking for one (with ``job``: while its lease holds)."""
    await record(store, None, (incident_key, conversation_id), job=job)


async def record(
    store: Store,
    statement: Executable | None,
    send: tuple[str, str] | None,
    *,
    job: Job | None = None,
) -> None:
    """In one commit: ``statement`` (what became of a card's post: where the card sits) and,
    for ``send`` (card key, conversation id), that no post of the card is in flight any more.
    With ``job``, only while its lease is still this worker's (``LeaseLost`` otherwise)."""

    def write(conn: Connection, _: None) -> None:
        if job is not None:
            outbox.hold(conn, job)
        if statement is not None:
            conn.execute(statement)
        if send is not None:
            conn.execute(delete(card_sends).where(_where(*send)))

    await store.run_write(write, None)  # one hop to SQLite's writer thread, not one a statement
