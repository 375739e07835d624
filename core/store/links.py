"""Incident links to ITSM records in the store, and the work each link change causes.

A link is stored per (incident, system, record number) and never deleted: unlinking marks it
inactive, so the card's version (``links_stamp``, the newest change to any of the incident's
links) only grows and every card showing the incident is redrawn. Linking, unlinking and a
change read back from the ITSM system each write, in one transaction, the link, the cards'
redraw jobs and the job that tells the other side (a Sentinel comment and label; a work note).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update

from core.itsm import IncidentLink, ItsmRecord, ItsmSystem, RecordType
from core.models import Incident
from core.store import outbox
from core.store.cards import redraw_cards
from core.store.engine import insert_for
from core.store.schema import incidents, posted_cards, webhook_receipts
from core.store.schema import outbox as outbox_table
from core.store.schema_links import incident_links
from core.store.sql import Rows, Statement
from core.store.store import Store
from core.triage import Actor

LINK_NOTE_JOB = "incident.link_note"
"""Job kind: tell Sentinel an incident was linked or unlinked (a comment and a label)."""

ITSM_OUTCOME_JOB = "itsm.outcome"
"""Job kind: write what happened to an incident to a linked ITSM record (work note, state)."""

ITSM_CREATE_JOB = "itsm.create_change"
"""Job kind: create the change request of an incident, then link it."""


def record_ordering_key(system: str, record_key: str) -> str:
    """Writes to one ITSM record run one at a time, in the order they were asked."""
    return f"itsm|{system}|{record_key}"


@dataclass(frozen=True)
class StoredLink:
    """A link as stored: the link, who made it, whether it stands, when it last changed."""

    incident_key: str
    link: IncidentLink
    linked_by: str
    linked_by_name: str
    active: bool
    updated_at: float


_LINKS_OF = select(incident_links).where(incident_links.c.incident_key == bindparam("key"))
_LINK_COLUMNS = tuple(column.name for column in incident_links.c)
LINKS_OF = Statement(
    f"SELECT {', '.join(_LINK_COLUMNS)} FROM incident_links "  # noqa: S608 - its own columns
    "WHERE incident_key = :key"
)
"""An incident's links (``key``), straight on the driver (read on every card drawn)."""
_BY_NUMBER = (
    select(incidents.c.key, incidents.c.payload)
    .select_from(incidents.join(posted_cards, posted_cards.c.incident_key == incidents.c.key))
    .where(
        incidents.c.number == bindparam("number"),
        posted_cards.c.conversation_id == bindparam("conversation_id"),
    )
)


def links_stamp(stored: Sequence[StoredLink]) -> str | None:
    """What the incident's links add to its card's version (None without any link ever)."""
    if not stored:
        return None
    return f"{int(max(s.updated_at for s in stored) * 1000):015d}"


async def links_of(store: Store, incident_key: str) -> list[StoredLink]:
    """Every link the incident ever had (active or not), oldest first."""
    return stored_links(store, await store.read(LINKS_OF, {"key": incident_key}))


def stored_links(store: Store, rows: Rows) -> list[StoredLink]:
    """The links in the rows ``LINKS_OF`` read, oldest first."""
    named = rows.named(_LINK_COLUMNS)
    return sorted((_stored(store, row) for row in named), key=lambda s: s.updated_at)


async def incident_by_number(store: Store, conversation_id: str, number: int) -> Incident | None:
    """The incident numbered ``number`` whose card is in the conversation, if any."""
    params = {"number": number, "conversation_id": conversation_id}
    async with store.reading() as conn:
        row = (await conn.execute(_BY_NUMBER, params)).first()
    if row is None:
        return None
    payload = store.cipher.decrypt(row.payload, "incidents.payload", row.key)
    return Incident.model_validate_json(payload)


async def link(store: Store, incident: Incident, record: IncidentLink, actor: Actor) -> bool:
    """Link ``incident`` to ``record``; False when that link already stood (nothing done).

    One transaction: the link, a redraw of every card showing the incident, and the job that
    puts a comment and a label on the Sentinel incident.
    """

    def write(conn: Connection, _: None) -> bool:
        now = time.time()
        found = _find(conn, incident.key, record)
        values = {
            "record_key": record.key or record.external_id,
            "record_type": record.type.value,
            "url": record.url,
            "status": record.status,
            "priority": record.priority,
            "linked_by": actor.object_id,
            "linked_by_name": store.cipher.encrypt(actor.name),
            "active": True,
            "updated_at": now,
        }
        if found is not None and found.active:
            return False
        if found is None:
            conn.execute(
                incident_links.insert().values(
                    incident_key=incident.key,
                    system=record.system.value,
                    external_id=record.external_id,
                    record_updated_at=None,
                    created_at=now,
                    **values,
                )
            )
        else:
            conn.execute(
                update(incident_links).where(incident_links.c.id == found.id).values(**values)
            )
        _note_job(conn, store, incident.key, record, actor, linked=True)
        redraw_cards(conn, store, incident.key)
        return True

    return await store.run_write(write, None)


async def unlink(
    store: Store, incident: Incident, system: ItsmSystem, number: str, actor: Actor
) -> IncidentLink | None:
    """Remove the link to record ``number``; the link removed, None when there was none."""

    def write(conn: Connection, _: None) -> IncidentLink | None:
        row = conn.execute(
            select(incident_links).where(
                incident_links.c.incident_key == incident.key,
                incident_links.c.system == system.value,
                incident_links.c.external_id == number,
                incident_links.c.active.is_(True),
            )
        ).first()
        if row is None:
            return None
        conn.execute(
            update(incident_links)
            .where(incident_links.c.id == row.id)
            .values(active=False, updated_at=time.time())
        )
        removed = _stored(store, row).link
        _note_job(conn, store, incident.key, removed, actor, linked=False)
        redraw_cards(conn, store, incident.key)
        return removed

    return await store.run_write(write, None)


async def request_change(
    store: Store, incident_key: str, actor: Actor, system: ItsmSystem | None = None
) -> None:
    """Queue the creation of the incident's change request in ``system`` (linked once it
    exists); a job without a system goes to the default one."""
    payload = {"incident_key": incident_key, "actor": actor.display, "actor_id": actor.object_id}
    if system is not None:
        payload["system"] = system.value
    row = outbox.job_row(
        ITSM_CREATE_JOB, f"itsm-create|{incident_key}", payload, cipher=store.cipher
    )

    def write(conn: Connection, _: None) -> None:
        conn.execute(outbox_table.insert(), [row])

    await store.run_write(write, None)


async def record_changed(
    store: Store, record: ItsmRecord, *, receipt: str | None = None
) -> list[str] | None:
    """A record as its system now has it: update every link to it; the incidents whose link
    changed (their cards are redrawn in the same transaction).

    A record read again with nothing new for the card (the webhook and the poller both
    bring each change; Warden's own writes come back too) changes nothing. ``receipt`` (a
    webhook's id) is recorded in the same transaction; None when it was seen before (a
    replay), and then nothing changes.
    """
    status = record.state_label or record.state
    stamp = record.updated_at.isoformat() if record.updated_at else None

    def write(conn: Connection, _: None) -> list[str] | None:
        if receipt is not None and not _first_receipt(conn, receipt, record):
            return None
        rows = conn.execute(
            select(incident_links).where(
                incident_links.c.system == record.system.value,
                incident_links.c.record_key == record.key,
                incident_links.c.active.is_(True),
            )
        ).all()
        changed: list[str] = []
        for row in rows:
            if (row.status, row.priority) == (status, record.priority):
                continue
            conn.execute(
                update(incident_links)
                .where(incident_links.c.id == row.id)
                .values(
                    status=status,
                    priority=record.priority,
                    record_updated_at=stamp,
                    updated_at=time.time(),
                )
            )
            redraw_cards(conn, store, row.incident_key)
            changed.append(row.incident_key)
        return changed

    return await store.run_write(write, None)


async def linked_record_keys(store: Store, system: ItsmSystem) -> int:
    """How many records of ``system`` have a standing link (for status and metrics)."""
    stmt = select(func.count(func.distinct(incident_links.c.record_key))).where(
        incident_links.c.system == system.value, incident_links.c.active.is_(True)
    )
    async with store.reading() as conn:
        return int((await conn.execute(stmt)).scalar() or 0)


def enqueue_outcomes(
    conn: Connection, store: Store, incident_key: str, outcome: dict[str, Any]
) -> int:
    """In the caller's transaction: one ``itsm.outcome`` job per standing link of the incident.

    ``outcome`` is what happened (vendor-neutral: ``note``, and ``status``/``severity``/
    ``classification`` when they changed); the job adds the record to write it to. Jobs of
    one record share an ordering key, so a record gets its outcomes in the order they
    happened, even after an outage.
    """
    rows = conn.execute(
        _LINKS_OF.where(incident_links.c.active.is_(True)), {"key": incident_key}
    ).all()
    jobs = [
        outbox.job_row(
            ITSM_OUTCOME_JOB,
            record_ordering_key(row.system, row.record_key),
            {
                "incident_key": incident_key,
                "system": row.system,
                "record_key": row.record_key,
                "number": row.external_id,
                "type": row.record_type,
                **outcome,
            },
            cipher=store.cipher,
        )
        for row in rows
    ]
    if jobs:
        conn.execute(outbox_table.insert(), jobs)
    return len(jobs)


def _first_receipt(conn: Connection, webhook_id: str, record: ItsmRecord) -> bool:
    """Record a webhook's id; False when it was recorded before."""
    stmt: Any = insert_for(conn.dialect.name, webhook_receipts).values(
        webhook_id=webhook_id,
        incident_key=f"{record.system.value}:{record.type.value}",
        incident_name=record.key,
        received_at=time.time(),
    )
    return bool(conn.execute(stmt.on_conflict_do_nothing()).rowcount)


def _find(conn: Connection, incident_key: str, record: IncidentLink) -> Any:
    return conn.execute(
        select(incident_links).where(
            incident_links.c.incident_key == incident_key,
            incident_links.c.system == record.system.value,
            incident_links.c.external_id == record.external_id,
        )
    ).first()


def _note_job(
    conn: Connection,
    store: Store,
    incident_key: str,
    record: IncidentLink,
    actor: Actor,
    *,
    linked: bool,
) -> None:
    """The job that tells Sentinel about a link (or its removal)."""
    payload = {
        "incident_key": incident_key,
        "linked": linked,
        "number": record.external_id,
        "url": record.url,
        "system": record.system.value,
        "actor": actor.display,
        "at": time.time(),
    }
    row = outbox.job_row(LINK_NOTE_JOB, f"link-note|{incident_key}", payload, cipher=store.cipher)
    conn.execute(outbox_table.insert(), [row])


def _stored(store: Store, row: Any) -> StoredLink:
    """The link in an ``incident_links`` row (its sealed column decrypted)."""
    return StoredLink(
        incident_key=row.incident_key,
        link=IncidentLink(
            system=ItsmSystem(row.system),
            external_id=row.external_id,
            key=row.record_key,
            url=row.url,
            type=RecordType(row.record_type),
            status=row.status,
            priority=row.priority,
        ),
        linked_by=row.linked_by,
        linked_by_name=store.cipher.decrypt(
            row.linked_by_name, "incident_links.linked_by_name", str(row.id)
        ),
        active=bool(row.active),
        updated_at=float(row.updated_at),
    )
