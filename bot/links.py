"""Linking incidents to ITSM records from Teams: ``link``/``unlink``, and the card's buttons.

``@Warden link 42 to CHG0030001`` links incident #42 (its card must be in the conversation)
to the record, after reading the record from the ITSM system: a record that does not exist,
or that Warden's account cannot read, is refused with the reason and nothing is stored. The
card's *Link to ServiceNow…* does the same for the incident it shows, and *Create change*
asks the outbox to create a change request from the incident and link it (the create never
sits in the click's path). Only responders may link, as only they may triage.

The record's form says its system (``CHG0030001`` is ServiceNow's, ``SEC-123`` Jira's); the
``ItsmDirectory`` reads it there, and says what to configure when that system is not
connected. A change is created in the directory's default system.
"""

from __future__ import annotations

import asyncio
import logging

from bot.triage import TriageDesk
from bot.types import Card, CardAction, Message, Refusal
from cards.common import error_card
from cards.links import SYSTEM_NAMES, deployment_linked_card, linked_card
from core.actions import LinkData, TriageData
from core.errors import DeliveryError, ItsmAmbiguous
from core.itsm import IncidentLink, ItsmRecord, ItsmSystem, RecordType, normalize_reference
from core.itsm_directory import EXAMPLES, ItsmDirectory, ItsmNotConnected, system_of
from core.models import Incident
from core.store import deployments as deployments_store
from core.store import links as links_store
from core.store import triage as triage_store
from core.store.store import Store
from core.triage import Actor

log = logging.getLogger(__name__)

LOOKUP_SECONDS = 8.0
"""How long a link waits for the ITSM system to answer the record's lookup."""

SEARCH_TYPES = (RecordType.CHANGE_REQUEST, RecordType.INCIDENT)
"""What *Link to ServiceNow…* searches."""

NOT_CONNECTED = (
    "Warden is not connected to an ITSM system, so it cannot link records. An administrator "
    "sets WARDEN_SERVICENOW__INSTANCE_URL (ServiceNow) or WARDEN_JSM__BASE_URL (Jira Service "
    "Management) and its credentials."
)
NOT_CONNECTED_TITLE = "Not connected to an ITSM system"


class LinkDesk:
    """Answers ``link``/``unlink`` and the card's *Link to ServiceNow…* / *Create change*."""

    def __init__(
        self,
        store: Store,
        triage: TriageDesk,
        itsm: ItsmDirectory,
        *,
        not_connected: str = NOT_CONNECTED,
    ) -> None:
        """Check people and draw cards with ``triage``; read records through ``itsm``.
        ``not_connected``: what people are told when no system is connected (why)."""
        self._store = store
        self._triage = triage
        self._itsm = itsm
        self.not_connected = not_connected

    @property
    def connected(self) -> bool:
        """True when an ITSM system is configured."""
        return self._itsm.connected

    @property
    def systems(self) -> tuple[ItsmSystem, ...]:
        """The connected ITSM systems."""
        return self._itsm.systems

    async def command(self, message: Message, name: str, values: dict[str, str]) -> list[Card]:
        """``link <n> to <record>`` or ``unlink <n> from <record>``."""
        if not self.connected:
            return [error_card(NOT_CONNECTED_TITLE, self.not_connected)]
        number = int(values["incident"])
        conversation = message.conversation.conversation_id
        incident = await links_store.incident_by_number(self._store, conversation, number)
        if incident is None:
            return [
                error_card(
                    f"No incident #{number} here",
                    f"Incident #{number} has no card in this conversation; link it where its "
                    "card was posted.",
                )
            ]
        clicked = CardAction(verb=name, user=message.user, conversation=message.conversation)
        try:
            actor = await self._triage.actor(clicked)
            if name == "unlink":
                try:
                    system = system_of(values["record"])
                    record = normalize_reference(system, values["record"])
                except ValueError as exc:
                    raise Refusal(f"{exc}; nothing changed.") from None
                removed = await links_store.unlink(self._store, incident, system, record, actor)
                if removed is None:
                    raise Refusal(f"#{number} is not linked to {record}; nothing changed.")
                self._triage.wake()
                return [linked_card(number, removed, linked=False, already=False)]
            link, created = await self._link(incident, actor, values["record"])
        except Refusal as refusal:
            return [
                error_card(
                    "Nothing was linked" if name == "link" else "Nothing changed", str(refusal)
                )
            ]
        return [linked_card(number, link, linked=True, already=not created)]

    async def link_deployment(self, message: Message, values: dict[str, str]) -> list[Card]:
        """``link deployment <name> to <change>``: the deployment must be one Warden has seen
        (one of that name) and the change one the ITSM system has; else the reason, and
        nothing is stored. The link records who made it, and when."""
        if not self.connected:
            return [error_card(NOT_CONNECTED_TITLE, self.not_connected)]
        clicked = CardAction(verb="link", user=message.user, conversation=message.conversation)
        name = values["deployment"]
        try:
            actor = await self._triage.actor(clicked)
            found = await deployments_store.by_name(self._store, name)
            if not found:
                raise Refusal(
                    f"Warden has seen no deployment named {name}: it reads deployments of "
                    "incidents' resource groups and after a CMDB sync. Nothing was linked."
                )
            if len(found) > 1:
                groups = ", ".join(d.resource_group.rsplit("/", 1)[-1] for d in found[:5])
                raise Refusal(
                    f"{len(found)} deployments are named {name} (in {groups}); Warden "
                    "cannot tell which one. Nothing was linked."
                )
            record = await self._lookup(values["record"])
            if record.type is not RecordType.CHANGE_REQUEST:
                raise Refusal(f"{record.number} is not a change request. Nothing was linked.")
        except Refusal as refusal:
            return [error_card("Nothing was linked", str(refusal))]
        deployment = found[0]
        created = await deployments_store.link(
            self._store, deployment, record.number, actor.object_id, actor.display
        )
        log.info("a deployment was linked to a change (%s)", "new" if created else "already")
        return [
            deployment_linked_card(
                deployment.name, deployment.resource_group, record.number, already=not created
            )
        ]

    async def link_action(self, action: CardAction, data: LinkData) -> Card:
        """*Link to ServiceNow…* on a card: the record read, linked, and the card redrawn."""
        shown = await self._shown(action, data)
        try:
            link, created = await self.link_record(shown.incident, action, data.record)
        except Refusal as refusal:
            return await self._triage.card(shown.incident, notice=str(refusal), shown=shown)
        if created:
            notice = f"Linked to {SYSTEM_NAMES[link.system]} {link.external_id}."
        else:
            notice = f"Already linked to {link.external_id}."
        return await self._triage.card(shown.incident, notice=notice)

    async def link_record(
        self, incident: Incident, action: CardAction, number: str
    ) -> tuple[IncidentLink, bool]:
        """Link ``incident`` to record ``number`` for whoever acted: the link, and whether it
        is new. ``Refusal`` saying why when they may not, or the record cannot be read."""
        if not self.connected:
            raise Refusal(self.not_connected)
        actor = await self._triage.actor(action)
        return await self._link(incident, actor, number)

    async def create_change(self, action: CardAction, data: TriageData) -> Card:
        """*Create change*: the create is queued in the default system (ITSM writes never
        sit in a click)."""
        shown = await self._shown(action, data)
        system = self._itsm.default_system
        try:
            if system is None:
                raise Refusal(self.not_connected)
            if self._itsm.default is None:
                raise Refusal(self._itsm.not_connected_message(system))
            actor = await self._triage.actor(action)
            standing = [
                link for link in shown.standing_links if link.type is RecordType.CHANGE_REQUEST
            ]
            if standing:
                raise Refusal(f"It is linked to change {standing[0].external_id} already.")
        except Refusal as refusal:
            return await self._triage.card(shown.incident, notice=str(refusal), shown=shown)
        await links_store.request_change(self._store, shown.incident.key, actor, system)
        self._triage.wake()
        notice = (
            f"Creating a change request in {system.display_name}; the card shows it once it exists."
        )
        return await self._triage.card(shown.incident, notice=notice, shown=shown)

    async def search(self, text: str) -> list[tuple[str, str]]:
        """Typeahead: ``(title, number)`` of the records matching ``text`` (none on failure)."""
        if not self.connected or len(text.strip()) < 3:
            return []
        try:
            async with asyncio.timeout(LOOKUP_SECONDS):
                found = await self._itsm.search(text, types=SEARCH_TYPES, limit=10)
        except (DeliveryError, TimeoutError):
            log.warning("record search failed")
            return []
        several = len(self._itsm.systems) > 1  # then each result says its system
        return [
            (
                " \u00b7 ".join(
                    [r.number, *([r.system.display_name] if several else []), r.short_description]
                )[:120],
                r.number,
            )
            for r in found
        ]

    async def _shown(self, action: CardAction, data: TriageData) -> triage_store.Shown:
        """The incident whose card was clicked here; ``NotShownHereError`` when it is not."""
        conversation = action.conversation.conversation_id
        shown = await triage_store.shown_here(self._store, data.incident, conversation)
        if shown is None:
            raise NotShownHereError
        return shown

    async def _link(
        self, incident: Incident, actor: Actor, number: str
    ) -> tuple[IncidentLink, bool]:
        """The record read and linked (the cards redrawn when the link is new)."""
        link = (await self._lookup(number)).link()
        created = await links_store.link(self._store, incident, link, actor)
        if created:
            self._triage.wake()
            log.info("incident linked to a %s record", link.system.value)
        return link, created

    async def _lookup(self, number: str) -> ItsmRecord:
        """The record, read now from the system its form names; ``Refusal`` saying why when
        it cannot be linked (not a reference, its system not connected, not readable)."""
        try:
            connector = self._itsm.for_reference(number)
            wanted = normalize_reference(connector.system, number)
        except ValueError:
            examples = " or ".join(EXAMPLES[s] for s in self._itsm.systems)
            raise Refusal(f"{number.upper()} is not a record number (e.g. {examples}).") from None
        except ItsmNotConnected as exc:
            raise Refusal(f"{exc.user_message} Nothing was linked.") from None
        system = connector.system.display_name
        try:
            async with asyncio.timeout(LOOKUP_SECONDS):
                found = await connector.get(wanted)
        except ItsmAmbiguous as exc:
            raise Refusal(exc.user_message) from None
        except (DeliveryError, TimeoutError):
            log.warning("record lookup failed")
            raise Refusal(
                f"{system} did not answer, so nothing was linked. Try again in a minute."
            ) from None
        if found is None:
            raise Refusal(
                f"No {system} record {wanted} that Warden can read: check the number, or ask "
                "an administrator to let Warden's account read it. Nothing was linked."
            )
        return found


class NotShownHereError(Exception):
    """The clicked incident's card is not in this conversation."""
