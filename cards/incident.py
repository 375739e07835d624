"""The incident card: one Sentinel incident as a full-width Adaptive Card.

Layout, top to bottom: a severity pill beside the creation time; ``#<number> · <title>``; a
FactSet (status, owner or "Unassigned", alerts, tactics, products, labels, provider,
classification; rows without a value are left out, except Owner); the description, shortened;
a footer ``Updated <time> · Warden``; and buttons to open the incident in Sentinel and in
Defender when the incident carries those links.

The card is a pure function of the :class:`~core.models.Incident`: the same version always
draws the same card, so a later update replaces it cleanly. Times use the card's DATE/TIME
functions, which the reader's Teams shows in the reader's own time zone. Every text that came
from the incident passes through :func:`cards.text.inert`; see :mod:`cards.text`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from cards.elements import (
    JSON,
    adaptive_card,
    column,
    column_set,
    execute,
    fact_set,
    open_url,
    rich_text,
    safe_url,
    text_block,
    text_run,
)
from cards.text import humanize_identifier, inert, localized, shorten
from cards.verbs import CardVerb
from core.models import Incident, Severity

TITLE_LIMIT = 200
"""Longest title shown, in characters, ellipsis included."""

DESCRIPTION_LIMIT = 300
"""Longest description shown, in characters, ellipsis included."""

UNASSIGNED = "Unassigned"
"""What the Owner row shows when nobody is assigned."""


class SeverityStyle(NamedTuple):
    """How a severity is coloured: the pill's text colour and its background style."""

    color: str
    """An Adaptive Card text colour (``Colors``)."""

    style: str
    """An Adaptive Card container style (``ContainerStyle``)."""


SEVERITY_STYLES: Mapping[Severity, SeverityStyle] = MappingProxyType(
    {
        Severity.HIGH: SeverityStyle(color="attention", style="attention"),
        Severity.MEDIUM: SeverityStyle(color="warning", style="warning"),
        Severity.LOW: SeverityStyle(color="accent", style="accent"),
        Severity.INFORMATIONAL: SeverityStyle(color="default", style="emphasis"),
    }
)
"""Red for High, amber for Medium, blue for Low, grey for Informational.

Low is blue rather than green: green ("good") reads as "all clear", which an incident is not.
"""


def incident_card(incident: Incident) -> JSON:
    """The Adaptive Card that shows ``incident`` in a Teams conversation.

    Untrusted text is neutralised (no ``{{``, no markdown links); only http(s) links become
    buttons; the description is shortened to :data:`DESCRIPTION_LIMIT` characters.
    """
    body: list[JSON] = [_header(incident), _title(incident), fact_set(_facts(incident))]
    description = inert(incident.description or "")
    if description:
        body.append(rich_text(shorten(description, DESCRIPTION_LIMIT), spacing="medium"))
    body.append(_footer(incident))
    return adaptive_card(body, _actions(incident))


def severity_pill(severity: Severity) -> JSON:
    """A small ``Column`` naming ``severity`` in capitals, coloured by :data:`SEVERITY_STYLES`."""
    look = SEVERITY_STYLES[severity]
    label = text_block(
        severity.value.upper(),
        color=look.color,
        weight="bolder",
        size="small",
        wrap=False,
    )
    return column([label], style=look.style, verticalContentAlignment="center")


def _header(incident: Incident) -> JSON:
    """The severity pill, beside the creation time when the incident has one."""
    columns = [severity_pill(incident.severity)]
    if incident.created is not None:
        created = text_block(f"Created {localized(incident.created)}", isSubtle=True, size="small")
        columns.append(column([created], "stretch", verticalContentAlignment="center"))
    return column_set(columns)


def _title(incident: Incident) -> JSON:
    """``#<number> · <title>`` as plain text runs (markdown never applies to the title)."""
    title = shorten(inert(incident.title), TITLE_LIMIT) or "(untitled incident)"
    heading = f"#{incident.number} \u00b7 {title}" if incident.number is not None else title
    return rich_text(text_run(heading, size="large", weight="bolder"), spacing="medium")


def _facts(incident: Incident) -> list[tuple[str, str]]:
    """The FactSet rows, in display order; empty rows are left out, except Owner."""
    owner = inert(incident.owner.display or "") or UNASSIGNED
    rows = [
        ("Status", incident.status.value),
        ("Owner", owner),
        ("Alerts", str(incident.alert_count) if incident.alert_count > 0 else ""),
        ("Tactics", _joined(humanize_identifier(t) for t in incident.tactics)),
        ("Products", _joined(incident.products)),
        ("Labels", _joined(incident.labels)),
        ("Provider", inert(incident.provider_name or "")),
        ("Classification", humanize_identifier(inert(incident.classification or ""))),
    ]
    return [(title, value) for title, value in rows if value]


def _joined(values: Iterable[str]) -> str:
    """The non-empty inert ``values`` joined with commas, or ``""`` when there are none."""
    parts = (inert(value) for value in values)
    return ", ".join(part for part in parts if part)


def _footer(incident: Incident) -> JSON:
    """``Updated <time> · Warden``, small and subtle, under a separator."""
    text = f"Updated {localized(incident.last_modified)} \u00b7 Warden"
    return text_block(text, isSubtle=True, size="small", separator=True, spacing="medium")


def _actions(incident: Incident) -> list[JSON]:
    """Links to Sentinel and Defender (each safe link present), then *Refresh*.

    *Refresh* carries the incident's key, so the bot can redraw the card from the store.
    """
    links = (
        ("Open in Sentinel", safe_url(incident.incident_url)),
        ("Open in Defender", safe_url(incident.provider_url)),
    )
    actions = [open_url(title, url) for title, url in links if url is not None]
    actions.append(execute("Refresh", CardVerb.REFRESH, {"incident": incident.key}))
    return actions
