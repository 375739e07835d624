"""Outbox handler for evidence cards: post each card once, then update it in place.

A job names a request (or, for a request opened in the same transaction, its dedupe key), a
role and a conversation, never a version: it draws the request as stored now, so a burst of
changes costs at most one update and a retried job never shows an older card.

The owner's card of a request being opened (a job marked ``personal``) goes to the owner's
personal chat with Warden when Warden can reach Graph: the owner known by UPN is resolved to
their Entra object id first, the app is installed for them if need be, and the chat Graph
gives becomes a stored conversation. When the tenant refuses (app not in the catalog, user
installs blocked) the card stays in the requesting or evidence channel, where it @mentions
the owner; so it does when Graph keeps failing after its retries (a card in the channel
beats a card held back). The way chosen is stored per request
(``core.store.evidence_cards.owner_route``) and the first decision stands: a retried job
installs nothing twice and posts once, later owner cards meant for that channel follow to
the personal chat, and the reviewers' card a click in the personal chat asks for goes to
the channel.

A card's first post goes out as incident cards do (``bot.marked_posts``): committed as
started with a marker the card carries, so a job run again after Teams accepted the card but
before its answer was recorded (Warden stopped, the connection broke) finds the card in the
channel through Graph, records it and updates it, instead of posting a second one. A
personal chat cannot be read back that way: there the card is posted again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from sqlalchemy import select

from bot.delivery import CardSender
from bot.marked_posts import AmbiguousPosts, earlier_post, left_conversation, post_marked
from cards.evidence import owner_card, people_on, reviewers_card
from cards.links import COST_DAYS
from cards.resources import ResourceFacts
from core.catalog import GUID, UPN, Catalog, Requirement
from core.errors import DeliveryError, Outcome
from core.evidence import EvidenceRequest
from core.models import ConversationKind, ConversationRef
from core.store import cmdb_cis as cmdb_cis_store
from core.store import cost_queries
from core.store import evidence as evidence_store
from core.store import evidence_cards as cards_store
from core.store.card_sends import CardSend
from core.store.evidence_cards import CardRole, OwnerRoute, OwnerWay, PostedEvidenceCard
from core.store.outbox import Job
from core.store.schema_evidence import evidence_requests
from core.store.store import Conversation, Store

log = logging.getLogger(__name__)


async def resource_facts(
    store: Store, resources: Sequence[str], today: date | None = None
) -> ResourceFacts | None:
    """The active Azure CIs of ``resources`` and what each cost over the :data:`COST_DAYS`
    days up to ``today`` (UTC; default now), from the CMDB sync and the cost exports; None
    when there is no resource to look up."""
    ids = sorted({resource.lower() for resource in resources})
    if not ids:
        return None
    end = today or datetime.now(UTC).date()
    stored = await cmdb_cis_store.cis(store, ids=ids, retired=False)
    costs = await cost_queries.resource_costs(store, ids, end - timedelta(days=COST_DAYS - 1), end)
    return ResourceFacts({ci.item.ci_id.lower(): ci.item for ci in stored}, costs)


class Person(Protocol):
    """A directory user as Graph names them (``graph.people.Person``)."""

    @property
    def id(self) -> str:
        """The Entra object id, lower case."""
        ...

    @property
    def name(self) -> str:
        """The display name."""
        ...


class People(Protocol):
    """The directory and personal chats (``graph.people.People``)."""

    async def user_by_upn(self, upn: str) -> Person | None:
        """The user with that principal name (or object id), or None when there is none."""
        ...

    async def personal_chat(self, user_id: str, app_external_id: str) -> str:
        """The chat id between the user and the app; a FAIL ``DeliveryError`` if refused."""
        ...


class EvidenceCardDelivery:
    """Runs ``evidence.card`` jobs against the Teams adapter.

    ``people``: Graph is reachable, so owner cards go to personal chats (without it, as in
    the sandbox, every card stays in its job's conversation). ``app_id``: the bot's Microsoft
    app id, its external id in the app catalog; empty: the id Teams addresses the bot by.
    ``ambiguous``: looks for the card of a post whose answer was lost (without it such a
    post is made again).
    """

    def __init__(
        self,
        store: Store,
        sender: CardSender,
        catalog: Catalog,
        *,
        people: People | None = None,
        app_id: str = "",
        ambiguous: AmbiguousPosts | None = None,
    ) -> None:
        self._store = store
        self._sender = sender
        self._catalog = catalog
        self._people = people
        self._app_id = app_id
        self._ambiguous = ambiguous or AmbiguousPosts(None, None)

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
        reviewed = await self._review_place(role, record.request.id, requirement, conversation_id)
        if reviewed is not None:
            conversation_id, conversation = reviewed
        if self._people is not None:
            personal = job.payload.get("personal") is True
            target = await self._routed(role, record.request, conversation_id, personal)
            if target is not None and target[1].active:
                conversation_id, conversation = target
                record = await evidence_store.record(self._store, record.request.id) or record
        request = record.request
        ref, key, earlier = conversation.ref, card_key(request.id, role), None
        posted = await cards_store.posted(self._store, request.id, role, conversation_id)
        if posted is None:  # a post whose answer was lost: its card, if it reached Teams
            earlier, posted = await self._lost_post(job, ref, request.id, role, conversation_id)
        redraw = job.payload.get("redraw") is True  # filed since: same version, more to show
        if posted is not None and posted.version >= request.version and not redraw:
            return
        names = await cards_store.names_of(self._store, people_on(record))
        draw = owner_card if role is CardRole.OWNER else reviewers_card
        known = await resource_facts(self._store, request.resources)
        card = draw(record, requirement, names, resources=known)
        try:
            if posted is None:
                version = str(request.version)
                activity_id = await post_marked(
                    self._store,
                    self._sender,
                    ref,
                    key,
                    conversation_id,
                    card,
                    version,
                    earlier=earlier,
                    job=job,
                )
            else:
                activity_id = posted.activity_id
                await self._sender.update_card(ref, activity_id, card)
        except DeliveryError as exc:  # the bot was removed: nothing more goes there
            names_message = posted is not None
            if await left_conversation(
                self._store, exc, conversation_id, job, names_message=names_message
            ):
                return
            raise
        await cards_store.record_posted(
            self._store,
            request.id,
            role,
            conversation_id,
            activity_id,
            request.version,
            send=(key, conversation_id),
            job=job,
        )

    async def _lost_post(
        self, job: Job, ref: ConversationRef, request_id: str, role: CardRole, here: str
    ) -> tuple[CardSend | None, PostedEvidenceCard | None]:
        """The post of the card into ``here`` still unanswered (None: none is), and its card
        when it was found in the conversation: recorded at the version it was posted with
        (so a newer request updates it), its post no longer in flight."""
        key = card_key(request_id, role)
        earlier, found = await earlier_post(self._store, self._ambiguous, ref, key, here)
        if earlier is None or found is None:
            return earlier, None
        version = int(earlier.version) if earlier.version.isdigit() else 0
        await cards_store.record_posted(
            self._store, request_id, role, here, found, version, send=(key, here), job=job
        )
        return earlier, PostedEvidenceCard(found, version)

    async def _review_place(
        self, role: CardRole, request_id: str, requirement: Requirement, here: str
    ) -> tuple[str, Conversation] | None:
        """Where a card meant for ``here`` goes instead when the requirement has a review
        channel: the reviewers' card there; the owner's card, when a click in the review
        channel redraws it, back where it was posted. None: ``here`` it is."""
        channel = requirement.review_channel.id if requirement.review_channel else None
        if channel is None:
            return None
        if role is CardRole.REVIEWERS and here != channel:
            found = await self._store.conversation(channel)
            if found is None or not found.active:
                log.warning("the review channel of %s is unknown to Warden", requirement.id)
                return None
            return channel, found
        if role is CardRole.OWNER and here == channel:
            places = await cards_store.posted_in(self._store, request_id, CardRole.OWNER)
            elsewhere = next((place for place in places if place != channel), None)
            found = await self._store.conversation(elsewhere) if elsewhere else None
            return None if found is None or elsewhere is None else (elsewhere, found)
        return None

    async def _routed(
        self, role: CardRole, request: EvidenceRequest, here: str, personal: bool
    ) -> tuple[str, Conversation] | None:
        """Where a card meant for ``here`` goes instead, if anywhere: the owner's card of a
        request routed to a personal chat goes there, and its reviewers' card to the home."""
        route = await cards_store.owner_route(self._store, request.id)
        if route is None and personal and role is CardRole.OWNER:
            route = await self._decide(request, here)
        if route is None or route.way is not OwnerWay.PERSONAL or route.chat is None:
            return None
        if role is CardRole.OWNER and here == route.home:
            elsewhere = route.chat
        elif role is CardRole.REVIEWERS and here == route.chat:
            elsewhere = route.home
        else:
            return None
        found = await self._store.conversation(elsewhere)
        return None if found is None else (elsewhere, found)

    async def _decide(self, request: EvidenceRequest, home_id: str) -> OwnerRoute:
        """Find (or open) the owner's personal chat and record the way the card goes."""
        home = await self._store.conversation(home_id)
        assert home is not None
        app_id = self._app_id or home.ref.bot_id.removeprefix("28:")
        try:
            chat = await self._chat_with_owner(request, app_id)
        except DeliveryError as exc:  # refused, or Graph failing after its retries
            log.info("owner card of %s stays in its channel: %s", request.id, exc)
            chat = None
        if chat is not None:
            await self._store.save_conversation(_personal_ref(home.ref, chat))
        route = await cards_store.record_owner_route(self._store, request.id, home_id, chat)
        log.info("owner card of evidence request %s: %s", request.id, route.way.value)
        return route

    async def _chat_with_owner(self, request: EvidenceRequest, app_id: str) -> str | None:
        """The owner's personal chat (remembered, or opened through Graph); None when the
        owner or the app is unknown. ``DeliveryError`` when Graph refuses or fails."""
        assert self._people is not None
        owner = await self._owner_id(request)
        if owner is None or not app_id:
            return None
        chat = await cards_store.personal_chat_of(self._store, owner)
        if chat is None:
            chat = await self._people.personal_chat(owner, app_id)
            await cards_store.remember_personal_chat(self._store, owner, chat)
        return chat

    async def _owner_id(self, request: EvidenceRequest) -> str | None:
        """The owner's Entra object id, their name remembered: a UPN is resolved in Graph and
        stored resolved, an object id without a known name is looked up. None when the
        directory does not know the owner by UPN."""
        owner = request.owner.strip()
        if self._people is None or not (GUID.fullmatch(owner) or UPN.fullmatch(owner)):
            return None
        if GUID.fullmatch(owner) and await cards_store.names_of(self._store, [owner]):
            return owner.lower()  # known by id and name: nothing to ask
        person = await self._people.user_by_upn(owner)
        if person is None:
            log.info("owner of evidence request %s is not in the directory", request.id)
            return owner.lower() if GUID.fullmatch(owner) else None
        if UPN.fullmatch(owner):
            await cards_store.resolve_owner(self._store, request.id, owner, person.id)
        await cards_store.remember_name(self._store, person.id, person.name)
        return person.id.lower()

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


def card_key(request_id: str, role: CardRole) -> str:
    """The key of a request's ``role`` card among posts in flight
    (``core.store.card_sends``): ``evidence:``, the request id and the role."""
    return f"evidence:{request_id}:{role.value}"


def _personal_ref(home: ConversationRef, chat_id: str) -> ConversationRef:
    """The reference of a personal chat, reached like the home conversation (its service
    URL, tenant and bot); in Teams the chat id Graph gives is the conversation id."""
    return ConversationRef(
        conversation_id=chat_id,
        service_url=home.service_url,
        channel_id=home.channel_id,
        kind=ConversationKind.PERSONAL,
        tenant_id=home.tenant_id,
        bot_id=home.bot_id,
        bot_name=home.bot_name,
    )
