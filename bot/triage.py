"""Triage buttons on incident cards: checked, recorded and answered at once.

Each click is checked in order, and the first refusal answers with the card as it stands and
a plain sentence (nothing changes): the card must have been posted in this conversation
(object-level authorization: action data names an incident, never grants access to it); the
person must be known (their Entra object id comes from the authenticated activity, never from
action data) and a responder; the card must show the incident's current version. Then the
change is recorded with the outbox job that writes it to the incident's source, and the
answer is the card in its *applying…* state, within milliseconds: the write runs from the
outbox and every card showing the incident follows it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Protocol

from pydantic import BaseModel

from bot.roles import RoleGate
from bot.types import Card, CardAction, Message, Refusal
from cards.common import error_card
from cards.incident import COMMENT_LIMIT, incident_card
from cards.verbs import CardVerb
from core.actions import (
    AssignData,
    CloseData,
    CommentData,
    RetryData,
    SeverityData,
    StatusData,
    TriageData,
)
from core.errors import DeliveryError
from core.itsm import ConfigurationItem, IncidentLink, ItsmSystem
from core.models import Incident, IncidentStatus, Owner
from core.roles import Role, RoleMap
from core.store import cmdb as cmdb_store
from core.store import links as links_store
from core.store import triage as triage_store
from core.store.store import Store, version_key
from core.triage import (
    CLOSING_CHOICES,
    Actor,
    IncidentDetails,
    TriageAction,
    TriageChange,
    TriageState,
    observed,
)

log = logging.getLogger(__name__)

TRIAGE_DATA: dict[CardVerb, type[BaseModel]] = {
    CardVerb.ASSIGN_ME: TriageData,
    CardVerb.ASSIGN: AssignData,
    CardVerb.SEVERITY: SeverityData,
    CardVerb.STATUS: StatusData,
    CardVerb.CLOSE: CloseData,
    CardVerb.COMMENT: CommentData,
    CardVerb.DETAILS: TriageData,
    CardVerb.RETRY: RetryData,
}
"""The data contract of each triage verb (``core.actions``)."""


_CHANGES_FIELDS = frozenset(
    {CardVerb.ASSIGN_ME, CardVerb.ASSIGN, CardVerb.SEVERITY, CardVerb.STATUS, CardVerb.CLOSE}
)
"""Verbs that change the incident: refused from a card older than the stored version (a
comment or a look at the alerts is fine from any card)."""


class DetailsSource(Protocol):
    """Reads an incident's first alerts and entities from its source."""

    async def details(self, incident_key: str) -> IncidentDetails:
        """The alerts and entities; ``DeliveryError`` when the source does not answer."""


class TriageDesk:
    """Answers the triage verbs of incident cards."""

    def __init__(
        self,
        store: Store,
        *,
        roles: RoleGate | None = None,
        details: DetailsSource | None = None,
        itsm: bool | Sequence[ItsmSystem] = False,
    ) -> None:
        """``roles``: who holds the responder role (none given: anyone does)."""
        self._store = store
        self._itsm = itsm
        self._roles = roles or RoleGate(RoleMap())
        self._details = details
        self.wake: Callable[[], None] = lambda: None
        """Called once a change is recorded (the outbox worker's ``wake``: start at once)."""
        self._verbs: dict[CardVerb, Callable[[Incident, BaseModel, Actor], TriageChange]] = {
            CardVerb.ASSIGN_ME: _assign_me,
            CardVerb.ASSIGN: _assign,
            CardVerb.SEVERITY: _severity,
            CardVerb.STATUS: _status,
            CardVerb.CLOSE: _close,
            CardVerb.COMMENT: _comment,
        }

    async def aclose(self) -> None:
        """Nothing to release: the role check is closed by whoever made it."""

    async def card(
        self,
        incident: Incident,
        notice: str | None = None,
        *,
        shown: triage_store.Shown | None = None,
    ) -> Card:
        """The incident's card as everyone sees it now, with triage buttons (``shown``: the
        incident's newest action, already read)."""
        if shown is None:
            action = await triage_store.latest(self._store, incident.key)
            links, cis = await self._links_and_cis(incident.key)
        else:
            action, links, cis = shown.latest, shown.standing_links, shown.cis
        return self.draw(incident, action, links, notice=notice, cis=cis)

    def draw(
        self,
        incident: Incident,
        action: TriageAction | None,
        links: list[IncidentLink],
        *,
        notice: str | None = None,
        details: IncidentDetails | None = None,
        cis: list[ConfigurationItem] | None = None,
    ) -> Card:
        """The triage card of ``incident`` with its newest action, standing links and CIs."""
        return incident_card(
            incident,
            action,
            triage=True,
            version=version_key(incident),
            notice=notice,
            details=details,
            links=links,
            itsm=self._itsm,
            cis=cis or (),
        )

    async def handle(self, verb: CardVerb, action: CardAction, data: BaseModel) -> Card | None:
        """Answer a triage verb; ``None`` when ``verb`` is not one."""
        if verb not in TRIAGE_DATA:
            return None
        incident_key = str(getattr(data, "incident", ""))
        conversation = action.conversation.conversation_id
        shown = await triage_store.shown_here(self._store, incident_key, conversation)
        if shown is None:
            log.warning("triage refused: the incident's card was not posted here")
            return None
        incident = shown.incident
        try:
            actor = await self.actor(action)
            if verb is CardVerb.RETRY:
                assert isinstance(data, RetryData)
                return await self._retry(incident, data, actor, action)
            assert isinstance(data, TriageData)
            if verb in _CHANGES_FIELDS and data.version != version_key(incident):
                raise Refusal(
                    "This incident changed since your card was drawn, so your change was not "
                    "applied. The card now shows it as it is: look again, then try again."
                )
            if verb is CardVerb.DETAILS:
                return await self._show_details(incident)
            change = self._verbs[verb](incident, data, actor)
        except Refusal as refusal:
            return await self.card(incident, notice=str(refusal), shown=shown)
        return await self._record(incident, verb, change, actor, action, shown)

    async def invalid(self, action: CardAction, problems: list[str]) -> Card | None:
        """The card with what was wrong with the inputs; ``None`` when it was not posted here."""
        return await self.noticed(action, "Nothing was changed: " + "; ".join(problems))

    async def noticed(self, action: CardAction, notice: str) -> Card | None:
        """The clicked card as it stands with ``notice`` on top; ``None`` when it was not
        posted here."""
        incident_key = action.data.get("incident")
        if not isinstance(incident_key, str):
            return None
        posted = await self._store.posted_card(incident_key, action.conversation.conversation_id)
        incident = await self._store.incident(incident_key) if posted else None
        if incident is None:
            return None
        return await self.card(incident, notice=notice)

    async def thread_reply(self, incident_key: str, message: Message) -> list[Card]:
        """A reply in an incident card's thread becomes a Sentinel comment by its author.

        Refusals (not a responder, not known) are answered in the thread; a recorded comment
        is answered by the card itself, whose action line names the author.
        """
        incident = await self._store.incident(incident_key)
        if incident is None:
            return []
        if len(message.text) > COMMENT_LIMIT:
            return [
                error_card(
                    "That reply is too long", f"Keep comments under {COMMENT_LIMIT} characters."
                )
            ]
        clicked = CardAction(
            verb=CardVerb.COMMENT.value, user=message.user, conversation=message.conversation
        )
        try:
            actor = await self.actor(clicked)
        except Refusal as refusal:
            return [error_card("Not added to the incident", str(refusal))]
        change = TriageChange(kind="comment", comment=message.text)
        await self._record(incident, CardVerb.COMMENT, change, actor, clicked, skip=False)
        return []

    async def actor(self, action: CardAction) -> Actor:
        """Who clicked, when they hold the responder role (the grant is kept with them);
        ``Refusal`` otherwise (fails closed)."""
        object_id = action.user.aad_object_id
        if not object_id:
            raise Refusal("Warden could not tell who you are, so nothing was changed.")
        grant = await self._roles.require(action.user, Role.RESPONDER)
        return Actor(object_id=object_id, name=action.user.name or "", allowed_by=grant)

    async def _record(
        self,
        incident: Incident,
        verb: CardVerb,
        change: TriageChange,
        actor: Actor,
        action: CardAction,
        shown: triage_store.Shown | None = None,
        *,
        skip: bool = True,
    ) -> Card:
        intent = uuid.uuid4().hex
        recorded = await triage_store.record(
            self._store,
            intent_id=intent,
            incident_key=incident.key,
            conversation_id=action.conversation.conversation_id,
            verb=verb.value,
            change=change,
            actor=actor,
            job={"intent": intent},
            # the invoke's answer redraws the clicked card; a thread reply has no such answer
            skip_card_in=action.conversation.conversation_id if skip else None,
        )
        self.wake()
        log.info("triage %s recorded (intent %s)", verb.value, intent)
        if shown is None:
            links, cis = await self._links_and_cis(incident.key)
        else:
            links, cis = shown.standing_links, shown.cis
        return self.draw(incident, recorded, links, cis=cis)

    async def _links_and_cis(
        self, incident_key: str
    ) -> tuple[list[IncidentLink], list[ConfigurationItem]]:
        """The incident's standing links and its CIs (each read apart, off the click path)."""
        stored = await links_store.links_of(self._store, incident_key)
        found = await cmdb_store.ci_set(self._store, incident_key)
        return [s.link for s in stored if s.active], found.items if found is not None else []

    async def _retry(
        self, incident: Incident, data: RetryData, actor: Actor, action: CardAction
    ) -> Card:
        earlier = await triage_store.by_intent(self._store, data.action)
        if earlier is None or earlier.incident_key != incident.key:
            raise Refusal("That change is not known here; nothing was changed.")
        if earlier.state is not TriageState.FAILED:
            raise Refusal("That change is not waiting to be tried again.")
        return await self._record(incident, CardVerb(earlier.verb), earlier.change, actor, action)

    async def _show_details(self, incident: Incident) -> Card:
        if self._details is None:
            raise Refusal("Warden is not connected to Sentinel, so it cannot list alerts.")
        try:
            details = await self._details.details(incident.key)
        except (DeliveryError, ValueError):
            raise Refusal("Sentinel did not answer; try again in a minute.") from None
        action = await triage_store.latest(self._store, incident.key)
        links, cis = await self._links_and_cis(incident.key)
        return self.draw(incident, action, links, details=details, cis=cis)


def _assign_me(incident: Incident, data: BaseModel, actor: Actor) -> TriageChange:
    owner = Owner(object_id=actor.object_id, name=actor.name or None)
    return _assignment(incident, owner)


def _assign(incident: Incident, data: BaseModel, actor: Actor) -> TriageChange:
    assert isinstance(data, AssignData)
    return _assignment(incident, Owner(object_id=data.assignee.lower()))


def _assignment(incident: Incident, owner: Owner) -> TriageChange:
    seen = observed(incident)["owner"]
    if seen.lower() == (owner.object_id or "").lower():
        raise Refusal(f"{incident.owner.display or 'That person'} already owns this incident.")
    return TriageChange(kind="assign", owner=owner, seen={"owner": seen})


def _severity(incident: Incident, data: BaseModel, actor: Actor) -> TriageChange:
    assert isinstance(data, SeverityData)
    if data.severity is incident.severity:
        raise Refusal(f"The severity is already {incident.severity.value}; nothing to change.")
    return TriageChange(
        kind="severity", severity=data.severity, seen={"severity": incident.severity.value}
    )


def _status(incident: Incident, data: BaseModel, actor: Actor) -> TriageChange:
    assert isinstance(data, StatusData)
    if incident.status is IncidentStatus.ACTIVE:
        raise Refusal("The incident is already active; nothing to change.")
    return TriageChange(
        kind="status", status=IncidentStatus.ACTIVE, seen={"status": incident.status.value}
    )


def _close(incident: Incident, data: BaseModel, actor: Actor) -> TriageChange:
    assert isinstance(data, CloseData)
    if incident.status is IncidentStatus.CLOSED:
        raise Refusal("The incident is already closed; reopen it first to close it again.")
    classification, reason, _ = CLOSING_CHOICES[data.classification]
    return TriageChange(
        kind="status",
        status=IncidentStatus.CLOSED,
        classification=classification,
        reason=reason,
        comment=data.comment,
        seen={"status": incident.status.value},
    )


def _comment(incident: Incident, data: BaseModel, actor: Actor) -> TriageChange:
    assert isinstance(data, CommentData)
    return TriageChange(kind="comment", comment=data.comment)
