"""Outbox handler for incident cards: post the card once, then update it in place.

A job names an incident and a conversation, not a version: it always draws the latest stored
version, so a burst of changes costs at most one update and a retried job never shows an
older card than the store holds.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from bot.types import Card
from cards.incident import comment_card, incident_card
from core.errors import DeliveryError, Outcome
from core.models import ConversationRef, Incident
from core.store import cmdb as cmdb_store
from core.store import links as links_store
from core.store import triage as triage_store
from core.store.links import links_stamp
from core.store.outbox import Job
from core.store.store import PostedCard, Store, version_key
from core.triage import TriageAction

log = logging.getLogger(__name__)


def card_version(
    incident: Incident,
    action: TriageAction | None,
    links: str | None = None,
    cis: str | None = None,
) -> str:
    """What a card shows, as a string that sorts in the order it changes: the incident's
    version, then its newest triage action's state, then the newest change to its links
    (``links_stamp``) or to its configuration items (``CiSet.stamp``), whichever is later.

    ``!`` sorts before ``#``, so a first triage action still outranks a link made before it.
    Both stamps are fixed-width times that only grow (a CI set that became empty still moves
    its stamp), so their later one grows with every change to either, and one suffix keeps
    the version short.
    """
    stamp = version_key(incident)
    if action is not None:
        stamp += f"#{action.stamp()}"
    later = max((s for s in (links, cis) if s is not None), default=None)
    return stamp if later is None else f"{stamp}!{later}"


class CardSender(Protocol):
    """What delivery needs from the Teams adapter."""

    async def post_card(self, ref: ConversationRef, card: Card) -> str:
        """Post a new card; returns its activity id."""

    async def update_card(self, ref: ConversationRef, activity_id: str, card: Card) -> None:
        """Replace the card at ``activity_id``."""


class IncidentCardDelivery:
    """Runs ``incident.card`` jobs against the Teams adapter.

    With ``cmdb`` (ServiceNow and Sentinel both configured) the card lists the incident's
    configuration items, and a card job asks for a CMDB lookup when the incident has none
    asked for its alert count yet: after the first post, and after the update that shows a
    new alert count (``core.store.cmdb.ask_lookup`` enqueues at most one per count).
    """

    def __init__(
        self,
        store: Store,
        sender: CardSender,
        *,
        triage: bool = False,
        itsm: bool = False,
        cmdb: bool = False,
    ) -> None:
        self._store = store
        self._sender = sender
        self._triage = triage
        self._itsm = itsm
        self._cmdb = cmdb

    async def __call__(self, job: Job) -> None:
        """Bring the incident's card in the job's conversation up to the stored version."""
        incident_key = str(job.payload.get("incident_key"))
        conversation_id = str(job.payload.get("conversation_id"))
        incident = await self._store.incident(incident_key)
        conversation = await self._store.conversation(conversation_id)
        if incident is None or conversation is None:
            raise DeliveryError("incident or conversation no longer stored", outcome=Outcome.FAIL)
        if not conversation.active:
            log.info("outbox job %s skipped: the bot left the conversation", job.id)
            return
        action = await triage_store.latest(self._store, incident_key)
        stored = await links_store.links_of(self._store, incident_key)
        cis = await cmdb_store.ci_set(self._store, incident_key) if self._cmdb else None
        version = card_version(
            incident, action, links_stamp(stored), cis.stamp if cis is not None else None
        )
        posted = await self._store.posted_card(incident_key, conversation_id)
        if posted is None or posted.version < version:
            card = incident_card(
                incident,
                action,
                triage=self._triage,
                version=version_key(incident),
                links=[s.link for s in stored if s.active],
                itsm=self._itsm,
                cis=cis.items if cis is not None else (),
            )
            if not await self._show(job, conversation.ref, posted, card, version):
                return
        if self._cmdb and (cis is None or cis.alert_count != incident.alert_count):
            await cmdb_store.ask_lookup(self._store, incident_key, incident.alert_count)

    async def _show(
        self,
        job: Job,
        ref: ConversationRef,
        posted: PostedCard | None,
        card: Card,
        version: str,
    ) -> bool:
        """Post or update the card, and remember it; False when the bot left the conversation."""
        incident_key = str(job.payload.get("incident_key"))
        conversation_id = str(job.payload.get("conversation_id"))
        try:
            if posted is None:
                activity_id = await self._sender.post_card(ref, card)
            else:
                activity_id = posted.activity_id
                await self._sender.update_card(ref, activity_id, card)
        except DeliveryError as exc:
            if not _bot_removed(exc, updating=posted is not None):
                raise
            await self._store.deactivate_conversation(conversation_id)
            log.warning("outbox job %s: conversation marked inactive (%s)", job.id, exc)
            return False
        await self._store.record_posted(incident_key, conversation_id, activity_id, version)
        return True


def _bot_removed(exc: DeliveryError, *, updating: bool) -> bool:
    """True when the failure means the bot is no longer in the conversation.

    403 always means that; 404 means it for a new post, while for an update it only says
    the message itself is gone (the job is then dead with that reason, not retried).
    """
    if exc.status == 403:
        return True
    return exc.status == 404 and not updating


class CommentReplyDelivery:
    """Runs ``incident.comment_reply`` jobs: a Sentinel comment, posted in the card's thread."""

    def __init__(self, store: Store, sender: CardSender) -> None:
        self._store = store
        self._sender = sender

    async def __call__(self, job: Job) -> None:
        """Reply in the thread of the incident's card in the job's conversation."""
        payload = job.payload
        conversation = await self._store.conversation(str(payload.get("conversation_id")))
        posted = await self._store.posted_card(
            str(payload.get("incident_key")), str(payload.get("conversation_id"))
        )
        if conversation is None or posted is None:
            raise DeliveryError(
                "the card or its conversation is no longer stored", outcome=Outcome.FAIL
            )
        if not conversation.active:
            return
        root = f"{conversation.ref.conversation_id};messageid={posted.activity_id}"
        thread = conversation.ref.model_copy(update={"conversation_id": root})
        created = payload.get("created")
        card = comment_card(
            payload.get("author") if isinstance(payload.get("author"), str) else None,
            str(payload.get("message", "")),
            datetime.fromisoformat(created) if isinstance(created, str) else None,
        )
        await self._sender.post_card(thread, card)
