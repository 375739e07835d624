"""The conversational cards: welcome, help, subscription replies, status and errors.

Each is a pure function of its arguments. Command names and usages come from
:data:`cards.commands.COMMANDS`, the same table the bot's router parses with, and are drawn as
monospace ``TextRun``s. Text that Warden did not write (the bot's display name, a command the
user typed, an error message) passes through :func:`cards.text.inert`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from cards.commands import COMMANDS, command_named
from cards.elements import (
    JSON,
    adaptive_card,
    container,
    fact_set,
    rich_text,
    text_block,
    text_run,
)
from cards.text import inert, localized, shorten
from core.budgets import scope_path
from core.models import (
    ConversationKind,
    ConversationStatus,
    IncidentSource,
    Severity,
    Subscription,
)

_PLACE: Mapping[ConversationKind, str] = MappingProxyType(
    {
        ConversationKind.CHANNEL: "this channel",
        ConversationKind.GROUP_CHAT: "this group chat",
        ConversationKind.PERSONAL: "you here",
    }
)


def welcome_card(bot_name: str, kind: ConversationKind) -> JSON:
    """A short welcome for a conversation of ``kind``: what Warden does here, what to type first.

    In a channel or group chat the first command carries an ``@<bot_name>`` mention, which Teams
    needs there to deliver the message to the bot; in a personal chat it is the bare command.
    """
    name = inert(bot_name) or "Warden"
    first = _typed(command_named("subscribe incidents").name, name, kind)
    return adaptive_card(
        [
            text_block(f"Hi, I'm {name}", size="large", weight="bolder", style="heading"),
            text_block(
                f"I post Microsoft Sentinel incidents to {_PLACE[kind]} as cards, and keep each "
                "card up to date as the incident changes."
            ),
            rich_text("To start, type ", _command_run(first), "."),
            rich_text(
                "For everything I can do, type ",
                _command_run(_typed("help", name, kind)),
                ".",
            ),
        ]
    )


def help_card(*, suggestion: str | None = None, unknown: str | None = None) -> JSON:
    """The list of commands, one line each, from :data:`cards.commands.COMMANDS`.

    With ``unknown`` it starts with "I don't know “<unknown>”."; with ``suggestion`` it adds
    "Did you mean <suggestion>?".
    """
    body: list[JSON] = []
    if unknown is not None:
        body.append(rich_text("I don't know \u201c", text_run(inert(unknown)), "\u201d."))
    if suggestion is not None:
        body.append(rich_text("Did you mean ", _command_run(inert(suggestion)), "?"))
    body.append(text_block("Here is what I can do:", weight="bolder", spacing="medium"))
    body.extend(_command_rows())
    body.append(
        text_block(
            "In a channel or group chat, @mention me before the command.",
            isSubtle=True,
            size="small",
            spacing="medium",
        )
    )
    return adaptive_card(body)


@functools.cache
def _command_rows() -> tuple[JSON, ...]:
    """One line per command (built once: the list never changes while Warden runs; cards
    are never changed after they are built, so every help card can share them)."""
    return tuple(
        rich_text(_command_run(command.usage), f" \u2014 {command.summary}", spacing="small")
        for command in COMMANDS
    )


def subscribed_card(subscription: Subscription) -> JSON:
    """The reply to ``subscribe incidents``: which incidents will be posted here from now on."""
    scope = severity_scope(subscription.min_severity)
    if subscription.sources != {IncidentSource.SENTINEL}:
        names = {IncidentSource.SENTINEL: "Sentinel", IncidentSource.DEFENDER: "Defender XDR"}
        scope += " from " + " and ".join(
            names[s] for s in IncidentSource if s in subscription.sources
        )
    stop = command_named("unsubscribe incidents").usage
    return adaptive_card(
        [
            text_block("Subscribed to incidents", weight="bolder", color="good", size="medium"),
            text_block(f"I'll post {scope} to this conversation and keep each card up to date."),
            rich_text("To stop, type ", _command_run(stop), ".", spacing="medium"),
        ]
    )


def unsubscribed_card(had_subscription: bool) -> JSON:
    """The reply to ``unsubscribe incidents``; says so when there was nothing to unsubscribe."""
    start = command_named("subscribe incidents").name
    if had_subscription:
        heading = text_block("Unsubscribed", weight="bolder", size="medium")
        detail = text_block("I won't post new incidents here any more. Cards already posted stay.")
    else:
        heading = text_block("Not subscribed", weight="bolder", size="medium")
        detail = text_block("This conversation wasn't subscribed to incidents, so nothing changed.")
    return adaptive_card(
        [
            heading,
            detail,
            rich_text("To subscribe, type ", _command_run(start), ".", spacing="medium"),
        ]
    )


def status_card(
    status: ConversationStatus,
    *,
    connectors: Mapping[str, Mapping[str, str]] | None = None,
    cmdb: Mapping[str, Any] | None = None,
) -> JSON:
    """This conversation's subscription, budget scopes, incidents posted, last delivery and
    outbox counts, each connector's version and state when given, and the CMDB sync's last run when
    ``cmdb`` (``core.store.cmdb_cis.summary``, as ``/readyz`` reports it) names one.

    Dead jobs (deliveries that gave up) are highlighted in an attention container when any exist.
    """
    subscription = "Not subscribed"
    if status.subscription is not None:
        scope = severity_scope(status.subscription.min_severity)
        subscription = scope[0].upper() + scope[1:]
    last = "never" if status.last_delivery is None else localized(status.last_delivery)
    body: list[JSON] = [
        text_block("Warden status", size="large", weight="bolder", style="heading"),
        fact_set(
            [
                ("Subscription", subscription),
                ("Incidents posted", str(status.incidents_posted)),
                ("Outbox pending", str(status.outbox_pending)),
                ("Dead letters", str(status.outbox_dead)),
                ("Delivery", "paused: Teams keeps failing" if status.delivery_paused else "ok"),
            ]
        ),
        text_block(f"Last delivery: {last}", isSubtle=True, spacing="small"),
    ]
    if status.budget_scopes:
        scopes = ", ".join(inert(scope_path(key)) for key in status.budget_scopes)
        body.append(fact_set([("Budget alerts", scopes)], spacing="small"))
    if connectors:
        body.append(text_block("Connectors", weight="bolder", spacing="medium"))
        body.append(
            fact_set([(c["title"], f"{c['state']} · v{c['version']}") for c in connectors.values()])
        )
    body += cmdb_rows(cmdb)
    if status.outbox_dead > 0:
        body.append(_dead_warning(status.outbox_dead))
    return adaptive_card(body)


CMDB_STATES = {"finished": "good", "unfinished": "warning", "failed": "attention"}
"""The colour of each state of the CMDB sync's last run."""


def cmdb_rows(cmdb: Mapping[str, Any] | None) -> list[JSON]:
    """``CMDB sync``: the last run's number, state and time, the CI counts and the error that
    stopped it; nothing when the sync never ran."""
    if not cmdb or cmdb.get("run") is None:
        return []
    state = str(cmdb.get("state", ""))
    line = f"Run {cmdb['run']}: {inert(state)}"
    when = _moment(cmdb.get("finished_at") or cmdb.get("started_at"))
    if when is not None:
        line += f" · {localized(when)}"
    facts = [
        ("CIs", f"{cmdb.get('active', 0)} active, {cmdb.get('retired', 0)} retired"),
        ("Needing tags", str(cmdb.get("needing_tags", 0))),
        ("Resources read", str(cmdb.get("read", 0))),
    ]
    rows: list[JSON] = [
        text_block("CMDB sync", weight="bolder", spacing="medium"),
        text_block(line, color=CMDB_STATES.get(state, "default"), spacing="small"),
        fact_set(facts, spacing="small"),
    ]
    if cmdb.get("error"):
        stopped = f"Stopped: {shorten(inert(str(cmdb['error'])), 300)}"
        rows.append(text_block(stopped, color="attention", size="small", spacing="small"))
    return rows


def _moment(value: object) -> datetime | None:
    """An ISO 8601 time from the sync's checkpoint, or None when there is none (or bad)."""
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def error_card(title: str, message: str, *, correlation_id: str | None = None) -> JSON:
    """A friendly error: ``title``, ``message`` and, when given, "Reference: <id>" for support."""
    items = [
        text_block(inert(title) or "Something went wrong", weight="bolder", color="attention"),
        text_block(inert(message)),
    ]
    if correlation_id:
        reference = rich_text(
            "Reference: ",
            text_run(inert(correlation_id), fontType="monospace"),
            spacing="medium",
        )
        items.append(reference)
    return adaptive_card([container(items, style="attention")])


def severity_scope(minimum: Severity) -> str:
    """Which incidents a subscription at ``minimum`` receives, in words for a sentence."""
    if minimum is Severity.INFORMATIONAL:
        return "incidents of every severity"
    if minimum is Severity.HIGH:
        return "High severity incidents only"
    return f"{minimum.value} severity incidents and above"


def _dead_warning(dead: int) -> JSON:
    """An attention container saying ``dead`` deliveries gave up and need an operator."""
    noun = "delivery has" if dead == 1 else "deliveries have"
    text = (
        f"{dead} {noun} stopped and wait in the dead-letter queue; an operator can see them "
        "with `python app.py dlq list` and replay them."
    )
    return container([text_block(text, color="attention", weight="bolder")], style="attention")


def _typed(command: str, bot_name: str, kind: ConversationKind) -> str:
    """``command`` as typed in a conversation of ``kind``: mentioned outside personal chats."""
    return command if kind is ConversationKind.PERSONAL else f"@{bot_name} {command}"


def _command_run(text: str) -> JSON:
    """``text`` as a command to type: a bold monospace ``TextRun``."""
    return text_run(text, fontType="monospace", weight="bolder")
