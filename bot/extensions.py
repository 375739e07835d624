"""Warden in Teams beyond its cards: typeahead search, the message extension, link unfurling.

- **Typeahead**: the card's *Link to ServiceNow…* choice set asks for the records matching
  what is typed (``application/search``, dataset ``warden.itsm.records``); only someone in a
  conversation where Warden is installed gets answers.
- **Link to incident…**: a message extension action on any chat message opens a dialog
  listing the incidents whose cards are in the conversation, the record number prefilled
  from the message; submitting links them through the link desk (same checks as the card).
- **Unfurling**: a pasted record URL of the configured instance becomes a compact card.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import bindparam, select

from bot.links import NOT_CONNECTED_TITLE, LinkDesk
from bot.types import (
    CardAction,
    ExtensionAction,
    LinkPreview,
    LinkQuery,
    Refusal,
    SearchAnswer,
    SearchQuery,
    SearchResult,
    TaskAnswer,
)
from bot.unfurl import Unfurler
from cards.common import error_card
from cards.extensions import INCIDENT_INPUT_ID, RECORD_INPUT_ID, IncidentChoice, link_dialog
from cards.links import SEARCH_DATASET, SYSTEM_NAMES
from core.itsm import ItsmSystem
from core.models import Incident
from core.store import triage as triage_store
from core.store.schema import incidents, posted_cards
from core.store.store import Store

log = logging.getLogger(__name__)

LINK_COMMAND = "linkToIncident"
"""The message extension's action command id (the manifest's ``composeExtensions`` entry)."""

DIALOG_TITLE = "Link to incident"
"""The dialog's title."""

MAX_INCIDENTS = 25
"""Incidents the dialog lists at most (the newest cards first)."""

_RECORD_NUMBER = re.compile(r"\b(?:CHG|INC)[0-9]{7,12}\b", re.IGNORECASE)
_ISSUE_KEY = re.compile(r"(?<![\w-])[A-Z][A-Z0-9_]{0,9}-[1-9][0-9]{0,9}(?![\w-])")
_CARDS_HERE = (
    select(incidents.c.key, incidents.c.payload)
    .select_from(incidents.join(posted_cards, posted_cards.c.incident_key == incidents.c.key))
    .where(posted_cards.c.conversation_id == bindparam("conversation_id"))
    .order_by(posted_cards.c.posted_at.desc())
    .limit(MAX_INCIDENTS)
)


def record_number_in(text: str, *, issue_keys: bool = False) -> str:
    """The first CHG… or INC… number in ``text``, upper-cased; else, with ``issue_keys``,
    the first Jira issue key written in capitals (``SEC-12``); "" when there is none."""
    found = _RECORD_NUMBER.search(text)
    if found is not None:
        return found[0].upper()
    key = _ISSUE_KEY.search(text) if issue_keys else None
    return key[0] if key is not None else ""


class ExtensionDesk:
    """Answers typeahead searches, the *Link to incident…* action and link queries."""

    def __init__(self, store: Store, links: LinkDesk, unfurler: Unfurler | None = None) -> None:
        """Link through ``links``; unfurl with ``unfurler`` (none: links stay plain)."""
        self._store = store
        self._links = links
        self._unfurler = unfurler

    async def search(self, query: SearchQuery) -> SearchAnswer:
        """The records matching ``query.text``; an error for a dataset Warden does not have."""
        if query.dataset != SEARCH_DATASET:
            log.info("typeahead refused: unknown dataset")
            return SearchAnswer(error="Warden has no such dataset.")
        if not await self._installed(query.conversation.conversation_id):
            log.info("typeahead refused: Warden is not installed in the conversation")
            return SearchAnswer()
        found = await self._links.search(query.text)
        window = found[query.skip : query.skip + query.top]
        return SearchAnswer([SearchResult(title, value) for title, value in window])

    async def fetch(self, action: ExtensionAction) -> TaskAnswer:
        """The *Link to incident…* dialog, the number prefilled from the message."""
        if action.command_id != LINK_COMMAND:
            return TaskAnswer(message="Warden does not know that action.")
        if not self._links.connected:
            return TaskAnswer(
                DIALOG_TITLE, error_card(NOT_CONNECTED_TITLE, self._links.not_connected)
            )
        jira = ItsmSystem.JSM in self._links.systems
        return await self._dialog(action, record_number_in(action.message_text, issue_keys=jira))

    async def submit(self, action: ExtensionAction) -> TaskAnswer:
        """Link the chosen incident to the record given; the dialog again, saying why, if not."""
        if action.command_id != LINK_COMMAND:
            return TaskAnswer(message="Warden does not know that action.")
        key, number = action.data.get(INCIDENT_INPUT_ID), action.data.get(RECORD_INPUT_ID)
        if not isinstance(number, str) or not number.strip():
            notice = "Give a record number or issue key, e.g. CHG0030001 or SEC-123."
            return await self._dialog(action, "", notice=notice)
        conversation = action.conversation.conversation_id
        shown = (
            await triage_store.shown_here(self._store, key, conversation)
            if isinstance(key, str)
            else None
        )
        if shown is None:
            notice = "That incident has no card in this conversation; choose one listed here."
            return await self._dialog(action, number, notice=notice)
        clicked = CardAction(verb=LINK_COMMAND, user=action.user, conversation=action.conversation)
        try:
            link, created = await self._links.link_record(shown.incident, clicked, number)
        except Refusal as refusal:
            return await self._dialog(action, number, notice=f"Nothing was linked. {refusal}")
        incident = _name(shown.incident)
        record = f"{SYSTEM_NAMES[link.system]} {link.external_id}"
        if not created:
            return TaskAnswer(message=f"{incident} was already linked to {record}.")
        return TaskAnswer(
            message=f"Linked {incident} to {record} ({link.status}). The incident's cards "
            "show the link."
        )

    async def unfurl(self, query: LinkQuery) -> LinkPreview | None:
        """A compact card of the record a pasted URL names; None to leave the link plain."""
        if self._unfurler is None:
            return None
        return await self._unfurler.unfurl(query)

    async def _dialog(
        self, action: ExtensionAction, record: str, *, notice: str | None = None
    ) -> TaskAnswer:
        """The dialog listing the incidents whose cards are in the action's conversation."""
        choices = await self._incidents_here(action.conversation.conversation_id)
        systems = self._links.systems
        card = link_dialog(choices, record, notice=notice, systems=systems)
        return TaskAnswer(DIALOG_TITLE, card)

    async def _incidents_here(self, conversation_id: str) -> list[IncidentChoice]:
        """The incidents whose cards are in the conversation, newest card first."""
        async with self._store.reading() as conn:
            rows = (await conn.execute(_CARDS_HERE, {"conversation_id": conversation_id})).all()
        choices = []
        for row in rows:
            payload = self._store.cipher.decrypt(row.payload, "incidents.payload", row.key)
            incident = Incident.model_validate_json(payload)
            choices.append(IncidentChoice(incident.key, incident.number, incident.title))
        return choices

    async def _installed(self, conversation_id: str) -> bool:
        """True when Warden is installed in the conversation."""
        conversation = await self._store.conversation(conversation_id)
        return conversation is not None and conversation.active


def _name(incident: Incident) -> str:
    """``#42`` or, without a number, the incident's title."""
    return f"#{incident.number}" if incident.number is not None else incident.title
