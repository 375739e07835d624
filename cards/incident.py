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

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import NamedTuple

from cards.elements import (
    JSON,
    adaptive_card,
    column,
    column_set,
    container,
    execute,
    fact_set,
    open_url,
    rich_text,
    safe_url,
    text_block,
    text_run,
)
from cards.links import ci_rows, itsm_buttons, link_buttons, link_rows
from cards.text import humanize_identifier, inert, localized, shorten
from cards.verbs import CardVerb
from core.deployments import DeploymentNote
from core.itsm import ConfigurationItem, IncidentLink, ItsmSystem
from core.models import Incident, IncidentSource, IncidentStatus, Severity
from core.triage import CLOSING_CHOICES, IncidentDetails, TriageAction, TriageState

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


def incident_card(
    incident: Incident,
    action: TriageAction | None = None,
    *,
    triage: bool = False,
    version: str = "",
    details: IncidentDetails | None = None,
    notice: str | None = None,
    links: Sequence[IncidentLink] = (),
    itsm: bool | Sequence[ItsmSystem] = False,
    cis: Sequence[ConfigurationItem] = (),
    deployment: DeploymentNote | None = None,
) -> JSON:
    """The Adaptive Card that shows ``incident`` in a Teams conversation.

    ``action`` is the incident's newest triage action (a line under the facts says who asked
    for what, and how it went); ``triage`` adds the triage buttons, whose data carries
    ``version`` (the stored version drawn) so a click on an older card is recognised;
    ``details`` lists alerts and entities; ``notice`` is a message to the person who clicked;
    ``links`` are the incident's standing ITSM links, and ``itsm`` (with triage: the
    connected ITSM systems, True for ServiceNow) adds the buttons that link it to a record
    (see :mod:`cards.links`); ``cis`` are the CMDB
    configuration items matching its entities (ServiceNow's, and the Azure CIs of its
    resources), listed under the links when there are some; ``deployment`` is the latest ARM
    deployment that touched one of its resources before the first alert (a line under them).
    Untrusted text is neutralised (no ``{{``, no markdown links); only http(s) links become
    buttons; the description is shortened to :data:`DESCRIPTION_LIMIT` characters.
    """
    body: list[JSON] = []
    if notice:
        body.append(container([text_block(inert(notice), weight="bolder")], style="warning"))
    body += [_header(incident), _title(incident), fact_set(_facts(incident))]
    if action is not None:
        body.append(_action_line(action, incident))
    body += link_rows(links)
    body += ci_rows(cis)
    if deployment is not None:
        body.append(_deployment_line(deployment))
    description = inert(incident.description or "")
    if description:
        body.append(rich_text(shorten(description, DESCRIPTION_LIMIT), spacing="medium"))
    if details is not None:
        body += _details(details, SOURCE_NAMES[incident.source])
    if triage:
        buttons = _triage_buttons(incident, version)
        systems = (ItsmSystem.SERVICENOW,) if itsm is True else tuple(itsm or ())
        if systems:
            buttons["actions"] += itsm_buttons(
                incident.key, version, can_create=not links, systems=systems
            )
        body.append(buttons)
    body.append(_footer(incident))
    return adaptive_card(body, _actions(incident, version if triage else None, links))


def _deployment_line(note: DeploymentNote) -> JSON:
    """``Deployed <name> <N> minutes before the first alert``, and the resource it touched."""
    resource = inert(note.resource.rsplit("/", 1)[-1])
    items = [
        text_block(inert(note.line), size="small", weight="bolder"),
        text_block(f"on {resource}", size="small", isSubtle=True, spacing="none"),
    ]
    style = "good" if note.state.lower() == "succeeded" else "warning"
    return container(items, style=style, spacing="small")


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
        ("Reported by", BOTH_SOURCES if reported_by_both(incident) else ""),
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


def _actions(
    incident: Incident, version: str | None, links: Sequence[IncidentLink] = ()
) -> list[JSON]:
    """Links to Sentinel and Defender (each safe link present), to the linked ITSM records,
    *Alerts and entities* (with triage), then *Refresh*.

    *Refresh* carries the incident's key, so the bot can redraw the card from the store.
    """
    sources = (
        ("Open in Sentinel", safe_url(incident.incident_url)),
        ("Open in Defender", safe_url(incident.provider_url)),
    )
    actions = [open_url(title, url) for title, url in sources if url is not None]
    actions += link_buttons(links)
    if version is not None:
        data = {"incident": incident.key, "version": version}
        actions.append(execute("Alerts and entities", CardVerb.DETAILS, data))
    actions.append(execute("Refresh", CardVerb.REFRESH, {"incident": incident.key}))
    return actions


SOURCE_NAMES: Mapping[IncidentSource, str] = MappingProxyType(
    {IncidentSource.SENTINEL: "Sentinel", IncidentSource.DEFENDER: "Defender XDR"}
)
"""How a card names each incident source (triage goes to the stored version's source)."""

BOTH_SOURCES = "Sentinel and Defender XDR"
"""The *Reported by* fact of an incident both sources report (one card for both)."""


def reported_by_both(incident: Incident) -> bool:
    """True when Sentinel and Defender XDR both report ``incident``: a Sentinel version
    carrying the XDR id, or a version shown under the key of the other source's."""
    return len(incident.reported_by) > 1 or incident.source_key is not None


ACTION_LOOKS: Mapping[TriageState, tuple[str, str]] = MappingProxyType(
    {
        TriageState.PENDING: ("Applying\u2026", "accent"),
        TriageState.WAITING: ("Waiting for {source}", "warning"),
        TriageState.APPLIED: ("Done", "good"),
        TriageState.CONFLICT: ("Not applied", "warning"),
        TriageState.FAILED: ("Not applied", "attention"),
    }
)
"""How each state of the newest triage action is labelled (``{source}``: the incident's
source) and coloured."""


def _action_line(action: TriageAction, incident: Incident) -> JSON:
    """Who asked for what and how it went: ``Done: Severity High → Medium, by Ada · <time>``."""
    label, style = ACTION_LOOKS[action.state]
    label = label.format(source=SOURCE_NAMES[incident.source])
    who = inert(action.actor.display)
    change = action.change
    owner = change.owner.object_id if change.owner else None
    took = change.kind == "assign" and owner == action.actor.object_id
    what = inert("Took ownership" if took else change.summary())
    text = f"**{label}**: {what}, by {who} \u00b7 {localized(action.when)}"
    items = [text_block(text, size="small")]
    if action.detail:
        items.append(text_block(inert(action.detail), size="small", isSubtle=True, spacing="none"))
    if action.state is TriageState.FAILED:
        retry = execute(
            "Try again", CardVerb.RETRY, {"incident": incident.key, "action": action.intent_id}
        )
        items.append({"type": "ActionSet", "actions": [retry]})
    return container(items, style=style, spacing="medium")


def _details(details: IncidentDetails, source: str) -> list[JSON]:
    """The alerts and entities, each a small FactSet under a heading (the rest in ``source``)."""
    parts: list[JSON] = []
    for heading, rows, more in (
        ("Alerts", details.alerts, details.more_alerts),
        ("Entities", details.entities, details.more_entities),
    ):
        parts.append(text_block(heading, weight="bolder", spacing="medium"))
        facts = [(inert(name), inert(value)) for name, value in rows]
        if more:
            facts.append(("\u2026", f"{more} more in {source}"))
        parts.append(fact_set(facts) if facts else text_block("None", isSubtle=True))
    return parts


def _triage_buttons(incident: Incident, version: str) -> JSON:
    """Assign to me, Assign to…, Severity… (not for Defender XDR: Graph cannot change an
    incident's severity), Activate or Reopen, Close…, Comment…."""
    data = {"incident": incident.key, "version": version}
    closed = incident.status is IncidentStatus.CLOSED
    actions = [
        execute("Assign to me", CardVerb.ASSIGN_ME, data),
        _show_card(
            "Assign to\u2026",
            [_people_picker()],
            execute("Assign", CardVerb.ASSIGN, data),
        ),
    ]
    if incident.source is not IncidentSource.DEFENDER:
        actions.append(
            _show_card(
                "Severity\u2026",
                [_severity_choice(incident.severity)],
                execute("Change severity", CardVerb.SEVERITY, data),
            )
        )
    if closed:
        actions.append(execute("Reopen", CardVerb.STATUS, {**data, "status": "Active"}))
    else:
        if incident.status is IncidentStatus.NEW:
            actions.append(execute("Activate", CardVerb.STATUS, {**data, "status": "Active"}))
        actions.append(
            _show_card(
                "Close\u2026",
                [_closing_choice(), _comment_input("Why it is closed (required)", required=True)],
                execute("Close incident", CardVerb.CLOSE, data),
            )
        )
    actions.append(
        _show_card(
            "Comment\u2026",
            [_comment_input("Your comment", required=True)],
            execute("Post comment", CardVerb.COMMENT, data),
        )
    )
    return {"type": "ActionSet", "actions": actions, "spacing": "medium"}


def _show_card(title: str, inputs: list[JSON], submit: JSON) -> JSON:
    """An ``Action.ShowCard`` revealing ``inputs`` and one ``submit`` button."""
    return {
        "type": "Action.ShowCard",
        "title": title,
        "card": {"type": "AdaptiveCard", "body": inputs, "actions": [submit]},
    }


def _people_picker() -> JSON:
    """Teams' people picker over the conversation's members; its value is an Entra object id."""
    return {
        "type": "Input.ChoiceSet",
        "id": "assignee",
        "label": "Assign to",
        "isRequired": True,
        "errorMessage": "Pick a person.",
        "choices": [],
        "choices.data": {
            "type": "Data.Query",
            "dataset": "graph.microsoft.com/users?scope=currentContext",
        },
    }


def _severity_choice(current: Severity) -> JSON:
    """The four severities, the current one selected."""
    return {
        "type": "Input.ChoiceSet",
        "id": "severity",
        "label": "New severity",
        "isRequired": True,
        "value": current.value,
        "choices": [{"title": s.value, "value": s.value} for s in reversed(Severity)],
    }


def _closing_choice() -> JSON:
    """Classification and reason together, as Sentinel's portal offers them."""
    return {
        "type": "Input.ChoiceSet",
        "id": "classification",
        "label": "Classification",
        "isRequired": True,
        "errorMessage": "Choose how the incident ends.",
        "choices": [
            {"title": label, "value": value} for value, (_, _, label) in CLOSING_CHOICES.items()
        ],
    }


def _comment_input(label: str, *, required: bool) -> JSON:
    """A multi-line text box for a comment."""
    return {
        "type": "Input.Text",
        "id": "comment",
        "label": label,
        "isMultiline": True,
        "maxLength": COMMENT_LIMIT,
        "isRequired": required,
        "errorMessage": "Write a few words.",
    }


COMMENT_LIMIT = 3000
"""Longest comment accepted from a card, in characters."""


def comment_card(author: str | None, message: str, created: datetime | None) -> JSON:
    """A Sentinel comment as a reply in its incident card's thread.

    ``Comment in Sentinel by <author> · <time>`` above the text (inert: a comment may hold
    anything), shortened to :data:`COMMENT_LIMIT` characters.
    """
    who = inert(author or "") or "someone"
    when = f" \u00b7 {localized(created)}" if created is not None else ""
    heading = text_block(f"Comment in Sentinel by {who}{when}", isSubtle=True, size="small")
    body = rich_text(shorten(inert(message), COMMENT_LIMIT) or "(empty comment)")
    return adaptive_card([heading, body])
