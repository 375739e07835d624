"""Outbox handler for evidence cards: post each card once, then update it in place.

A job names a request (or, for a request opened in the same transaction, its dedupe key), a
role and a conversation, never a version: it draws the request as stored now, so a burst of
changes costs at most one update and a retried job never shows an older card.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from bot.delivery import CardSender
from cards.evidence import owner_card, people_on, reviewers_card
from core.catalog import Catalog
from core.errors import DeliveryError, Outcome
from core.store import evidence as evidence_store
from core.store import evidence_cards as cards_store
from core.store.evidence_cards import CardRole
from core.store.outbox import Job
from core.store.schema import evidence_requests
from core.store.store import Store

log = logging.getLogger(__name__)


class EvidenceCardDelivery:
    """Runs ``evidence.card`` jobs against the Teams adapter."""

    def __init__(self, store: Store, sender: CardSender, catalog: Catalog) -> None:
        self._store = store
        self._sender = sender
        self._catalog = catalog

    async def __call__(self, job: Job) -> None:
        """Bring the job's card in its conversation up to the stored request."""
        role = CardRole(str(job.payload.get("role")))
        conversation_id = str(job.payload.get("conversation_id"))
        request_id = await self._request_id(job)
        record = await evidence_store.record(self._store, request_id) if request_id else None
        conversation = await self._store.conversation(conversation_id)
        if record is None or conversation is None:
            raise DeliveryError("request or conversation no longer stored", outcome=Outcome.FAIL)
        requirement = self._catalog.get(record.request.requirement_id)
        if requirement is None:
            raise DeliveryError("the requirement left the catalog", outcome=Outcome.FAIL)
        if not conversation.active:
            log.info("outbox job %s skipped: the bot left the conversation", job.id)
            return
        request = record.request
        posted = await cards_store.posted(self._store, request.id, role, conversation_id)
        if posted is not None and posted.version >= request.version:
            return
        names = await cards_store.names_of(self._store, people_on(record))
        draw = owner_card if role is CardRole.OWNER else reviewers_card
        card = draw(record, requirement, names)
        if posted is None:
            activity_id = await self._sender.post_card(conversation.ref, card)
        else:
            activity_id = posted.activity_id
            await self._sender.update_card(conversation.ref, activity_id, card)
        await cards_store.record_posted(
            self._store, request.id, role, conversation_id, activity_id, request.version
        )

    async def _request_id(self, job: Job) -> str | None:
        """The job's request id; for a job written with the request's opening, by its key."""
        request_id = job.payload.get("request")
        if isinstance(request_id, str):
            return request_id
        key = job.payload.get("key")
        stmt = select(evidence_requests.c.id).where(evidence_requests.c.open_key == key)
        async with self._store.reading() as conn:
            found = (await conn.execute(stmt)).scalar()
        return None if found is None else str(found)
