"""Warden's answers to Teams: commands, installation, card actions, the message extension."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bot.budget_commands import BUDGET_COMMANDS, budget_command
from bot.budgets import BudgetDesk
from bot.evidence import EVIDENCE_DATA, EvidenceDesk
from bot.evidence_files import AttachFileData, ChatFileDesk
from bot.extensions import ExtensionDesk
from bot.links import NOT_CONNECTED, NOT_CONNECTED_TITLE, LinkDesk, NotShownHereError
from bot.roles import VERB_ROLES, RoleDenied, RoleGate
from bot.router import Parsed, parse_command
from bot.triage import TRIAGE_DATA, TriageDesk
from bot.types import (
    Card,
    CardAction,
    ExtensionAction,
    LinkPreview,
    LinkQuery,
    Membership,
    Message,
    Refusal,
    SearchAnswer,
    SearchQuery,
    TaskAnswer,
)
from bot.unfurl import Unfurler
from cards.common import (
    error_card,
    help_card,
    status_card,
    subscribed_card,
    unsubscribed_card,
    welcome_card,
)
from cards.incident import incident_card
from cards.verbs import CardVerb
from core.actions import BudgetData, LinkData, RefreshData, TriageData
from core.breaker import Breakers
from core.models import IncidentSource, Severity, Subscription
from core.roles import Role, RoleMap
from core.store import budget_subscriptions, cmdb_cis
from core.store.store import Store

log = logging.getLogger(__name__)

VERB_DATA: dict[CardVerb, type[BaseModel]] = {
    CardVerb.REFRESH: RefreshData,
    CardVerb.LINK: LinkData,
    CardVerb.CREATE_CHANGE: TriageData,
    **TRIAGE_DATA,
    **EVIDENCE_DATA,
    CardVerb.EVIDENCE_ATTACH_FILE: AttachFileData,
    CardVerb.BUDGET_ACKNOWLEDGE: BudgetData,
    CardVerb.BUDGET_OPEN_CHANGE: BudgetData,
}
"""The data contract of each verb (``core.actions``)."""

_PLAIN = {
    "comment": "a comment is needed",
    "classification": "choose how the incident ends",
    "severity": "choose a severity",
    "assignee": "pick a person",
    "record": "give a record number or issue key, e.g. CHG0030001 or SEC-123",
    "link": "give an https:// link",
    "attestation": "write the attestation (at most 4,000 characters)",
    "reason": "a rejection needs a reason",
}
"""What a missing or bad input means, in words, by input id."""

_LINK_VERBS = frozenset({CardVerb.LINK, CardVerb.CREATE_CHANGE})

NO_CATALOG = "Warden has no requirement catalog: an operator sets WARDEN_REQUIREMENTS_FILE."


def _problems(errors: list[ErrorDetails]) -> list[str]:
    """What was wrong with a card's inputs, in words, each once."""
    problems = set()
    for error in errors:
        if error["loc"]:
            problems.add(_PLAIN.get(str(error["loc"][0]), "the card is out of date"))
        elif error["type"] == "value_error":  # a check across inputs says it in words
            problems.add(str(error["ctx"]["error"]))
        else:
            problems.add("the card is out of date")
    return sorted(problems)


def _alert(data: BaseModel) -> str:
    """The alert key of a budget button's data."""
    assert isinstance(data, BudgetData)
    return data.alert


class WardenBot:
    """The ``TurnHandler`` for Warden: one method per kind of turn."""

    def __init__(
        self,
        store: Store,
        breakers: Breakers | None = None,
        *,
        triage: TriageDesk | None = None,
        links: LinkDesk | None = None,
        unfurler: Unfurler | None = None,
        evidence: EvidenceDesk | None = None,
        connectors: Mapping[str, Mapping[str, str]] | None = None,
        switched_off: Mapping[str, str] | None = None,
        roles: RoleGate | None = None,
        budgets: BudgetDesk | None = None,
    ) -> None:
        """Answer with ``store``; triage, links and unfurling only when each is given.
        ``connectors``: each connector's title, version and state, for ``status``;
        ``switched_off``: what a command of a connector switched off answers, by name;
        ``roles``: the check of the role each command and card verb needs (none given: every
        role is open to anyone)."""
        self._store = store
        self._roles = roles or RoleGate(RoleMap())
        self._connectors = connectors or {}
        self._switched_off = switched_off or {}
        self._breakers = breakers
        self._triage = triage
        self._links = links
        self._evidence = evidence
        self._budgets_on = budgets is not None
        self._extensions = ExtensionDesk(store, links, unfurler) if links is not None else None
        self._active: set[str] = set()  # conversations this process saw saved as active
        self._actions: dict[CardVerb, Callable[[CardAction, BaseModel], Awaitable[Card]]] = {
            CardVerb.REFRESH: self._refresh,
        }
        if links is not None:
            self._actions[CardVerb.LINK] = self._linking
            self._actions[CardVerb.CREATE_CHANGE] = self._linking
        if evidence is not None:
            self._actions.update(dict.fromkeys(EVIDENCE_DATA, evidence.handle))
        self._files = ChatFileDesk(  # the worker's wake is set on the desk after construction
            store,
            evidence.catalog if evidence is not None else None,
            wake=(lambda: evidence.wake()) if evidence is not None else (lambda: None),
            member_of=evidence.member_of if evidence is not None else None,
        )
        if evidence is not None:
            self._actions[CardVerb.EVIDENCE_ATTACH_FILE] = self._files.attach
        if budgets is not None:
            desk = budgets
            self._actions[CardVerb.BUDGET_ACKNOWLEDGE] = lambda action, data: desk.handle(
                action, _alert(data), change=False
            )
            self._actions[CardVerb.BUDGET_OPEN_CHANGE] = lambda action, data: desk.handle(
                action, _alert(data), change=True
            )

    async def on_membership(self, change: Membership) -> list[Card]:
        """Remember a conversation the bot joined (and welcome it), or forget one it left."""
        ref = change.conversation
        if not change.added:
            self._active.discard(ref.conversation_id)
            await self._store.deactivate_conversation(ref.conversation_id)
            log.info("bot removed from a %s conversation", ref.kind.value)
            return []
        newly_active = await self._store.save_conversation(ref)
        self._active.add(ref.conversation_id)
        if not newly_active:
            return []  # Teams announces one installation twice (installation and member update)
        log.info("bot installed in a %s conversation", ref.kind.value)
        return [welcome_card(ref.bot_name or "Warden", ref.kind)]

    async def on_message(self, message: Message) -> list[Card]:
        """Run the command in ``message`` and answer with its card."""
        ref = message.conversation
        if ref.conversation_id not in self._active:
            await self._store.save_conversation(ref)
            self._active.add(ref.conversation_id)
        if message.files:  # evidence attached in chat, never a command
            return await self._files.receive(message)
        parsed = parse_command(message.text)
        if parsed.command is None and message.thread_id and self._triage is not None:
            incident_key = await self._store.card_at(ref.conversation_id, message.thread_id)
            if incident_key is not None and message.text:
                return await self._triage.thread_reply(incident_key, message)
        if parsed.command is None:
            if parsed.problem:
                return [error_card("That command needs another look", parsed.problem)]
            return [help_card(suggestion=parsed.suggestion, unknown=message.text or None)]
        try:
            if parsed.command.name == "whoami":
                return [await self._roles.whoami(message.user)]
            await self._roles.require(message.user, parsed.command.role)
        except RoleDenied as denied:
            return [denied.card()]
        except Refusal as refusal:
            return [error_card("Nothing was done", str(refusal))]
        return await self._command(message, parsed)

    async def _command(self, message: Message, parsed: Parsed) -> list[Card]:
        """Run a parsed command the person may run."""
        assert parsed.command is not None
        ref = message.conversation
        name = parsed.command.name
        if name == "subscribe incidents":
            named = parsed.values.get("from", IncidentSource.SENTINEL.value).split()
            if off := next(filter(None, map(self._switched_off.get, named)), None):
                return [error_card("Incidents are switched off", off)]
            minimum = Severity.parse(parsed.argument) if parsed.argument else Severity.INFORMATIONAL
            sub = Subscription(
                conversation_id=ref.conversation_id,
                min_severity=minimum,
                sources=frozenset(IncidentSource(name) for name in named),
            )
            await self._store.subscribe(sub, by=message.user.aad_object_id or message.user.id)
            return [subscribed_card(sub)]
        if name == "unsubscribe incidents":
            actor = message.user.aad_object_id or message.user.id
            return [unsubscribed_card(await self._store.unsubscribe(ref.conversation_id, by=actor))]
        if name in BUDGET_COMMANDS:
            card = await budget_command(
                self._store, message, name, parsed.values, enabled=self._budgets_on
            )
            return [card]
        if name == "link deployment":
            if self._links is None:
                return [error_card(NOT_CONNECTED_TITLE, NOT_CONNECTED)]
            return await self._links.link_deployment(message, parsed.values)
        if name in ("link", "unlink"):
            if self._links is None:
                return [error_card(NOT_CONNECTED_TITLE, NOT_CONNECTED)]
            return await self._links.command(message, name, parsed.values)
        if name == "request evidence":
            if self._evidence is None:
                return [error_card("Evidence requests are off", NO_CATALOG)]
            return await self._evidence.command(message, parsed.values)
        if name == "status":
            status = await self._store.conversation_status(ref.conversation_id)
            paused = self._breakers is not None and self._breakers.is_open(ref.service_url)
            budgets = await budget_subscriptions.scopes_of(self._store, ref.conversation_id)
            status = status.model_copy(
                update={"delivery_paused": paused, "budget_scopes": tuple(budgets)}
            )
            cmdb = await cmdb_cis.summary(self._store)
            return [status_card(status, connectors=self._connectors, cmdb=cmdb)]
        return [help_card()]

    async def on_card_action(self, action: CardAction) -> Card:
        """Answer a card action by its verb; an unknown or stale verb gets an error card."""
        verb = CardVerb.parse(action.verb)
        handler = self._actions.get(verb) if verb is not None else None
        if verb is not None and handler is None and self._triage is not None:
            handler = self._triaged
        if verb is None or handler is None:
            ref = uuid.uuid4().hex[:12]
            log.warning("unknown card verb (ref %s)", ref)
            return error_card(
                "This button no longer works",
                "The card is out of date or the action is unknown. Ask for a fresh card.",
                correlation_id=ref,
            )
        try:
            data = VERB_DATA[verb].model_validate(action.data)
        except ValidationError as exc:
            log.warning("card action %s refused: unexpected data", verb.value)
            errors = exc.errors()
            if self._evidence is not None and verb in EVIDENCE_DATA:
                card = await self._evidence.invalid(action, _problems(errors))
                if card is not None:
                    return card
            if (
                self._triage is not None
                and (verb in TRIAGE_DATA or verb is CardVerb.LINK)
                and all(e["type"] != "extra_forbidden" for e in errors)
            ):
                card = await self._triage.invalid(action, _problems(errors))
                if card is not None:
                    return card
            return error_card("This button sent something unexpected", "Nothing was changed.")
        try:
            await self._roles.require(action.user, VERB_ROLES.get(verb, Role.OPERATOR))
        except Refusal as refusal:
            return await self._refused(verb, action, refusal)
        return await handler(action, data)

    async def _refused(self, verb: CardVerb, action: CardAction, refusal: Refusal) -> Card:
        """The clicked card with why nothing changed, or a card saying it on its own."""
        card = None
        if self._evidence is not None and verb in EVIDENCE_DATA:
            card = await self._evidence.noticed(action, str(refusal))
        elif self._triage is not None and (verb in TRIAGE_DATA or verb in _LINK_VERBS):
            card = await self._triage.noticed(action, str(refusal))
        if card is not None:
            return card
        if isinstance(refusal, RoleDenied):
            return refusal.card()
        return error_card("Nothing was changed", str(refusal))

    async def on_search(self, query: SearchQuery) -> SearchAnswer:
        """Typeahead choices (none while Warden cannot link records)."""
        if self._extensions is None:
            return SearchAnswer()
        return await self._extensions.search(query)

    async def on_extension_fetch(self, action: ExtensionAction) -> TaskAnswer:
        """The dialog of a message extension action."""
        if self._extensions is None:
            return TaskAnswer("Warden", error_card(NOT_CONNECTED_TITLE, NOT_CONNECTED))
        return await self._extensions.fetch(action)

    async def on_extension_submit(self, action: ExtensionAction) -> TaskAnswer:
        """Do what a message extension's dialog submitted."""
        if self._extensions is None:
            return TaskAnswer(message=NOT_CONNECTED)
        return await self._extensions.submit(action)

    async def on_link_query(self, query: LinkQuery) -> LinkPreview | None:
        """Unfurl a pasted record URL (None leaves it a plain link)."""
        if self._extensions is None:
            return None
        return await self._extensions.unfurl(query)

    async def _triaged(self, action: CardAction, data: BaseModel) -> Card:
        """A triage verb, answered by the triage desk."""
        assert self._triage is not None
        verb = CardVerb.parse(action.verb)
        card = await self._triage.handle(verb, action, data) if verb is not None else None
        if card is None:
            return error_card(
                "Not available here", "This conversation has no card for that incident."
            )
        return card

    async def _linking(self, action: CardAction, data: BaseModel) -> Card:
        """*Link to ServiceNow…* and *Create change*, answered by the link desk."""
        assert self._links is not None
        try:
            if isinstance(data, LinkData):
                return await self._links.link_action(action, data)
            assert isinstance(data, TriageData)
            return await self._links.create_change(action, data)
        except NotShownHereError:
            return error_card(
                "Not available here", "This conversation has no card for that incident."
            )

    async def _refresh(self, action: CardAction, data: BaseModel) -> Card:
        """Redraw an incident card from the latest stored version, where it was posted."""
        assert isinstance(data, RefreshData)
        conversation = action.conversation.conversation_id
        posted = await self._store.posted_card(data.incident, conversation)
        incident = await self._store.incident(data.incident) if posted else None
        if incident is None:
            log.warning("refresh refused: the incident's card was not posted here")
            return error_card(
                "Not available here", "This conversation has no card for that incident."
            )
        if self._triage is not None:
            return await self._triage.card(incident)
        return incident_card(incident)
