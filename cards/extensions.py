"""Cards of Warden's message extension: the *Link to incident…* dialog and unfurled records.

The dialog lists the incidents whose cards are in the conversation and asks for the record
number (prefilled from the message the action was taken on); an unfurled ServiceNow link is
a compact card of the record: number, short description, state, priority, last update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cards.elements import JSON, adaptive_card, fact_set, open_url, safe_url, text_block
from cards.links import SYSTEM_NAMES, record_box
from cards.text import inert, localized, shorten
from core.itsm import ItsmRecord, ItsmSystem

CHOICE_TITLE_LIMIT = 80
"""Characters of an incident's choice title at most."""

RECORD_INPUT_ID = "record"
"""The dialog's input for the record number."""

INCIDENT_INPUT_ID = "incident"
"""The dialog's choice of incident (its value is the incident's key)."""


@dataclass(frozen=True)
class IncidentChoice:
    """An incident the dialog offers: its key, number and title."""

    key: str
    number: int | None
    title: str

    @property
    def label(self) -> str:
        """``#42 · Suspicious sign-in``, shortened to fit a choice."""
        prefix = f"#{self.number} \u00b7 " if self.number is not None else ""
        return shorten(inert(prefix + self.title), CHOICE_TITLE_LIMIT)


def link_dialog(
    incidents: Sequence[IncidentChoice],
    record: str = "",
    *,
    notice: str | None = None,
    systems: Sequence[ItsmSystem] = (ItsmSystem.SERVICENOW,),
) -> JSON:
    """The *Link to incident…* dialog: pick an incident here, give a record of ``systems``
    (a ServiceNow number, a Jira issue key), *Link*.

    Without incidents it says so and offers nothing to submit.
    """
    label, placeholder = record_box(systems)
    body: list[JSON] = []
    if notice:
        body.append(text_block(inert(notice), color="attention"))
    if not incidents:
        body.append(
            text_block(
                "No incident cards are in this conversation. Link a record where the "
                "incident's card was posted."
            )
        )
        return adaptive_card(body)
    choices = [{"title": choice.label, "value": choice.key} for choice in incidents]
    body += [
        {
            "type": "Input.ChoiceSet",
            "id": INCIDENT_INPUT_ID,
            "label": "Incident",
            "isRequired": True,
            "errorMessage": "Choose the incident to link.",
            "choices": choices,
            "value": incidents[0].key,
        },
        {
            "type": "Input.Text",
            "id": RECORD_INPUT_ID,
            "label": label,
            "isRequired": True,
            "errorMessage": f"Give a record, e.g. {placeholder}.",
            "placeholder": placeholder,
            "maxLength": 20,
            "value": inert(record),
        },
    ]
    return adaptive_card(body, [{"type": "Action.Submit", "title": "Link"}])


def record_card(record: ItsmRecord) -> JSON:
    """A compact card of an ITSM record: number, short description, state, priority, updated."""
    name = f"{SYSTEM_NAMES[record.system]} {record.number}"
    facts = [("State", inert(record.state_label or record.state) or "Unknown")]
    if record.priority is not None:
        facts.append(("Priority", f"P{record.priority}"))
    body: list[JSON] = [text_block(inert(name), weight="bolder")]
    if record.short_description:
        body.append(text_block(shorten(inert(record.short_description), 200), spacing="small"))
    body.append(fact_set(facts, spacing="small"))
    if record.updated_at is not None:
        updated = f"Updated {localized(record.updated_at)}"
        body.append(text_block(updated, size="small", isSubtle=True, spacing="small"))
    url = safe_url(record.url)
    return adaptive_card(body, [open_url(f"Open {record.number}", url)] if url else None)
