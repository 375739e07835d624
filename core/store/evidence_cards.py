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

from sqlalchemy import func, select, update

from core.store import card_sends
from core.store.evidence_audit import FollowUp
from core.store.outbox import Job
from core.store.schema_evidence import (
    evidence_cards,
    evidence_owner_chats,
    evidence_owner_routes,
    evidence_people,
    evidence_requests,
)
from core.store.store import Store

EVIDENCE_CARD_JOB = "evidence.card"
"""The outbox job kind that posts or updates one evidence card.

Payload: ``{"request": id, "role": "owner" | "reviewers", "conversation_id": id}``, plus
``"personal": true`` on the owner's card of a request being opened: it goes to the owner's
personal chat when Warden can reach it (a job without the flag stays in its conversation)."""


class OwnerWay(StrEnum):
    """Where a request's owner card went."""

    PERSONAL = "personal"
    CHANNEL = "channel"


@dataclass(frozen=True)
class OwnerRoute:
    """Where a request's owner card went: ``chat`` (personal) or its ``home`` conversation."""

    home: str
    chat: str | None
    way: OwnerWay


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


def redraw_jobs(request_id: str, conversation_id: str, *, filed: bool = False) -> list[FollowUp]:
    """The ``evidence.card`` jobs that bring both cards of a request in a conversation up to
    date. ``filed``: its evidence was filed since, which leaves the version as it was, so the
    jobs say ``redraw`` to be drawn even at the version already posted."""
    if not conversation_id:
        return []
    extra = {"redraw": True} if filed else {}
    return [
        FollowUp(
            EVIDENCE_CARD_JOB,
            f"evidence|{request_id}|{conversation_id}",
            {**card_job_payload(request_id, role, conversation_id), **extra},
            conversation_id=conversation_id,
        )
        for role in (CardRole.OWNER, CardRole.REVIEWERS)
    ]


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


async def posted_in(store: Store, request_id: str, role: CardRole) -> list[str]:
    """The conversations where the request's ``role`` card was posted, first posted first."""
    stmt = (
        select(evidence_cards.c.conversation_id)
        .where(evidence_cards.c.request_id == request_id, evidence_cards.c.role == role.value)
        .order_by(evidence_cards.c.posted_at)
    )
    async with store.reading() as conn:
        return [str(row[0]) for row in (await conn.execute(stmt)).all()]


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
    *,
    send: tuple[str, str] | None = None,
    job: Job | None = None,
) -> None:
    """Remember that the ``role`` card showing ``version`` sits at ``activity_id``; in the
    same commit, the post in flight ``send`` (card key, conversation id;
    ``core.store.card_sends``) is forgotten. With ``job``, only while its lease holds
    (``LeaseLost`` otherwise)."""
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
    await card_sends.record(store, stmt, send, job=job)


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


async def personal_chat_of(store: Store, person_id: str) -> str | None:
    """The personal chat with ``person_id`` Graph gave earlier, if any."""
    stmt = select(evidence_owner_chats.c.chat_id).where(
        evidence_owner_chats.c.person_id == person_id.strip().casefold()
    )
    async with store.reading() as conn:
        found = (await conn.execute(stmt)).scalar()
    return None if found is None else str(found)


async def remember_personal_chat(store: Store, person_id: str, chat_id: str) -> None:
    """Keep ``chat_id`` as the personal chat with ``person_id``."""
    now = time.time()
    stmt = store.insert(evidence_owner_chats).values(
        person_id=person_id.strip().casefold(), chat_id=chat_id, updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["person_id"], set_={"chat_id": chat_id, "updated_at": now}
    )
    async with store.writing() as conn:
        await conn.execute(stmt)


async def owner_route(store: Store, request_id: str) -> OwnerRoute | None:
    """Where the request's owner card went, once that was decided."""
    stmt = select(
        evidence_owner_routes.c.home_id,
        evidence_owner_routes.c.chat_id,
        evidence_owner_routes.c.way,
    ).where(evidence_owner_routes.c.request_id == request_id)
    async with store.reading() as conn:
        row = (await conn.execute(stmt)).first()
    return None if row is None else OwnerRoute(row.home_id, row.chat_id, OwnerWay(row.way))


async def record_owner_route(
    store: Store, request_id: str, home: str, chat: str | None
) -> OwnerRoute:
    """Decide where the owner card goes (personal with ``chat``, else ``home``); the first
    decision stands, so a retried or concurrent delivery follows it."""
    way = OwnerWay.PERSONAL if chat else OwnerWay.CHANNEL
    stmt = store.insert(evidence_owner_routes).values(
        request_id=request_id, home_id=home, chat_id=chat, way=way.value, decided_at=time.time()
    )
    async with store.writing() as conn:
        await conn.execute(stmt.on_conflict_do_nothing(index_elements=["request_id"]))
    decided = await owner_route(store, request_id)
    assert decided is not None
    return decided


async def resolve_owner(store: Store, request_id: str, upn: str, object_id: str) -> None:
    """Store the owner of a request, known so far by ``upn``, by their Entra object id."""
    stmt = (
        update(evidence_requests)
        .where(
            evidence_requests.c.id == request_id,
            func.lower(evidence_requests.c.owner) == upn.strip().casefold(),
        )
        .values(owner=object_id.lower())
    )
    async with store.writing() as conn:
        await conn.execute(stmt)
