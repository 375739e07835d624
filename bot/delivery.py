"""Outbox handler for incident cards: post the card once, then update it in place.

A job names an incident and a conversation, not a version: it always draws the latest stored
version, so a burst of changes costs at most one update and a retried job never shows an
older card than the store holds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.marked_posts import AmbiguousPosts, earlier_post, in_thread, left_conversation, post_marked
from bot.types import Card
from cards.incident import comment_card, incident_card
from core.errors import DeliveryError, Outcome
from core.itsm import ConfigurationItem, ItsmSystem
from core.models import ConversationRef, Incident, IncidentSource
from core.store import card_sends
from core.store import cmdb as cmdb_store
from core.store import cmdb_cis as cmdb_cis_store
from core.store import deployments as deployments_store
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

    With ``deployments`` (the look-back in seconds; Sentinel configured) the card also lists
    the Azure CIs of the incident's resources and the latest ARM deployment that touched one
    of them before the first alert; the first card job asks for the read
    (``core.store.deployments.ask_incident``), which redraws the card when it is done.

    A post is committed as started (``core.store.card_sends``) before it leaves, and the
    card carries that post's marker; a job that finds its post started but never answered
    asks ``ambiguous`` whether the card arrived before posting it again.
    """

    def __init__(
        self,
        store: Store,
        sender: CardSender,
        *,
        triage: bool = False,
        itsm: bool | Sequence[ItsmSystem] = False,
        cmdb: bool = False,
        deployments: float | None = None,
        ambiguous: AmbiguousPosts | None = None,
    ) -> None:
        self._store = store
        self._sender = sender
        self._triage = triage
        self._itsm = itsm
        self._cmdb = cmdb
        self._deployments = deployments
        self._ambiguous = ambiguous or AmbiguousPosts(None, None)

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
        twin = None  # a Defender XDR card showing its Sentinel twin: the twin's key
        if incident.source is IncidentSource.SENTINEL and incident.native_key != incident_key:
            twin = incident.native_key
        azure = await self._azure(incident_key, twin)
        stamps = [x for x in (cis.stamp if cis is not None else None, azure.stamp) if x]
        version = card_version(incident, action, links_stamp(stored), max(stamps, default=None))
        posted = await self._store.posted_card(incident_key, conversation_id)
        if posted is None or posted.version < version:
            card = incident_card(
                incident,
                action,
                triage=self._triage,
                version=version_key(incident),
                links=[s.link for s in stored if s.active],
                itsm=self._itsm,
                cis=_merged(cis.items if cis is not None else [], azure.items),
                deployment=azure.view.note,
            )
            if not await self._show(job, conversation.ref, posted, card, version):
                return
        if self._deployments is not None:
            if not azure.view.asked:
                await deployments_store.ask_incident(self._store, incident_key)
            if twin is not None and not azure.view.twin_asked:
                # the Sentinel twin's entities name resources the Defender incident does not
                await deployments_store.ask_incident(self._store, incident_key, twin)
        if self._cmdb and (cis is None or cis.alert_count != incident.alert_count):
            await cmdb_store.ask_lookup(self._store, incident_key, incident.alert_count)

    async def _azure(self, incident_key: str, twin: str | None) -> _Azure:
        """The incident's Azure CIs and latest deployment (nothing when deployments are off),
        and whether its Sentinel ``twin``'s read was asked for."""
        if self._deployments is None:
            return _Azure(deployments_store.IncidentDeployments(asked=True), [])
        view = await deployments_store.incident_deployments(
            self._store, incident_key, self._deployments, twin
        )
        found = []
        if view.resources:
            stored = await cmdb_cis_store.cis(self._store, ids=view.resources, retired=False)
            found = [ci.item for ci in stored]
        return _Azure(view, found)

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
            earlier = None
            if posted is None:
                earlier, found = await earlier_post(
                    self._store, self._ambiguous, ref, incident_key, conversation_id
                )
                if found is not None and earlier is not None:  # the lost post's card: adopt it
                    await card_sends.settle(
                        self._store, incident_key, conversation_id, found, earlier.version, job=job
                    )
                    posted = PostedCard(found, earlier.version)
            if posted is None:
                activity_id = await post_marked(
                    self._store,
                    self._sender,
                    ref,
                    incident_key,
                    conversation_id,
                    card,
                    version,
                    earlier=earlier,
                    job=job,
                )
            elif posted.version < version:
                activity_id = posted.activity_id
                await self._sender.update_card(ref, activity_id, card)
            else:
                return True  # the adopted card already shows this version
        except DeliveryError as exc:
            updating = posted is not None
            if not await left_conversation(
                self._store, exc, conversation_id, job, names_message=updating
            ):
                raise
            return False
        await card_sends.settle(
            self._store, incident_key, conversation_id, activity_id, version, job=job
        )
        return True


@dataclass(frozen=True)
class _Azure:
    """The Azure side of an incident's card: the deployments view and the resources' CIs."""

    view: deployments_store.IncidentDeployments
    items: list[ConfigurationItem]

    @property
    def stamp(self) -> str | None:
        """What it adds to the card's version."""
        return self.view.stamp


def _merged(
    first: Sequence[ConfigurationItem], second: Sequence[ConfigurationItem]
) -> list[ConfigurationItem]:
    """``first`` then the CIs of ``second`` it lacks (by id)."""
    known = {item.ci_id for item in first}
    return [*first, *(item for item in second if item.ci_id not in known)]


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
        thread = in_thread(conversation.ref, posted.activity_id)
        created = payload.get("created")
        card = comment_card(
            payload.get("author") if isinstance(payload.get("author"), str) else None,
            str(payload.get("message", "")),
            datetime.fromisoformat(created) if isinstance(created, str) else None,
        )
        await self._sender.post_card(thread, card)
