"""Where evidence cards sit in Teams, and the names shown for the people on them.

An evidence request has up to one card per role (the owner's, the reviewers') in each
conversation; the ``evidence.card`` outbox job posts it once and then updates it in place,
remembering here the activity id and the request ``version`` it shows. People are stored by
id (Entra object id or UPN) on requests and decisions; the name last seen for each id is
kept here so a card redrawn later by the outbox still reads as names.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select

from core.store.schema import evidence_cards, evidence_people
from core.store.store import Store

EVIDENCE_CARD_JOB = "evidence.card"
"""The outbox job kind that posts or updates one evidence card.

Payload: ``{"request": id, "role": "owner" | "reviewers", "conversation_id": id}``."""


class CardRole(StrEnum):
    """Whose card it is: the owner's (hand in evidence) or the reviewers' (decide)."""

    OWNER = "owner"
    REVIEWERS = "reviewers"


@dataclass(frozen=True)
class PostedEvidenceCard:
    """One evidence card in a conversation: its message and the request version it shows."""

    activity_id: str
    version: int


def card_job_payload(request_id: str, role: CardRole, conversation_id: str) -> dict[str, str]:
    """The payload of an ``evidence.card`` job."""
    return {"request": request_id, "role": role.value, "conversation_id": conversation_id}


async def posted(
    store: Store, request_id: str, role: CardRole, conversation_id: str
) -> PostedEvidenceCard | None:
    """Where the request's ``role`` card sits in the conversation, if it was posted there."""
    stmt = select(evidence_cards.c.activity_id, evidence_cards.c.version).where(
        evidence_cards.c.request_id == request_id,
        evidence_cards.c.role == role.value,
        evidence_cards.c.conversation_id == conversation_id,
    )
    async with store.reading() as conn:
        row = (await conn.execute(stmt)).first()
    return None if row is None else PostedEvidenceCard(row.activity_id, row.version)


async def shown_in(store: Store, request_id: str, conversation_id: str) -> bool:
    """True when any card of the request was posted in the conversation."""
    stmt = (
        select(evidence_cards.c.role)
        .where(
            evidence_cards.c.request_id == request_id,
            evidence_cards.c.conversation_id == conversation_id,
        )
        .limit(1)
    )
    async with store.reading() as conn:
        return (await conn.execute(stmt)).first() is not None


async def record_posted(
    store: Store,
    request_id: str,
    role: CardRole,
    conversation_id: str,
    activity_id: str,
    version: int,
) -> None:
    """Remember that the ``role`` card showing ``version`` sits at ``activity_id``."""
    now = time.time()
    values = {"activity_id": activity_id, "version": version, "updated_at": now}
    stmt = store.insert(evidence_cards).values(
        request_id=request_id,
        role=role.value,
        conversation_id=conversation_id,
        posted_at=now,
        **values,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["request_id", "role", "conversation_id"], set_=values
    )
    async with store.writing() as conn:
        await conn.execute(stmt)


async def remember_name(store: Store, person_id: str, name: str | None) -> None:
    """Keep ``name`` as the display name of ``person_id`` (ids compare case-blind)."""
    if not name or not name.strip():
        return
    now = time.time()
    key = person_id.strip().casefold()
    stmt = store.insert(evidence_people).values(
        person_id=key, name=name.strip()[:256], updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["person_id"], set_={"name": name.strip()[:256], "updated_at": now}
    )
    async with store.writing() as conn:
        await conn.execute(stmt)


async def names_of(store: Store, person_ids: Iterable[str]) -> Mapping[str, str]:
    """The display names known for ``person_ids``, keyed by the lower-cased id."""
    keys = sorted({person.strip().casefold() for person in person_ids if person})
    if not keys:
        return {}
    stmt = select(evidence_people.c.person_id, evidence_people.c.name).where(
        evidence_people.c.person_id.in_(keys)
    )
    async with store.reading() as conn:
        return {row.person_id: row.name for row in await conn.execute(stmt)}
