"""The budget alert card: a pure function of the alert, what was done, and its top resources."""

from __future__ import annotations

from collections.abc import Sequence

from cards.commands import command_named
from cards.elements import (
    JSON,
    adaptive_card,
    execute,
    fact_set,
    open_url,
    rich_text,
    safe_url,
    text_block,
    text_run,
)
from cards.text import inert
from cards.verbs import CardVerb
from core.budgets import BudgetAlert, BudgetCard, scope_path
from core.costs import ResourceCost

TOP_RESOURCES = 5
"""How many of the costliest resources of the budget's scope the card lists."""

NO_COST_DATA = "No cost data ingested yet for this scope and period."


def budget_card(
    alert: BudgetAlert,
    key: str,
    state: BudgetCard,
    top: Sequence[ResourceCost],
    *,
    itsm: bool = False,
) -> JSON:
    """The card of ``alert`` (stored under ``key``): amounts, its costliest resources, who
    acknowledged it, its change. *Open change* only when ``itsm`` (an ITSM system is connected)
    and no change was asked for yet."""
    unit = inert(alert.unit)
    headline = f"Budget {inert(alert.budget_name)} crossed {alert.threshold_percent}%"
    facts = [
        ("Scope", inert(alert.scope)),
        ("Threshold", f"{alert.threshold_percent}% ({_money(alert.threshold, unit)})"),
        ("Spent", f"{_money(alert.spent, unit)} of {_money(alert.budget, unit)}"),
    ]
    if alert.forecast is not None:
        facts.append(("Forecast", _money(alert.forecast, unit)))
    facts.append(("Period from", alert.period_start.isoformat()))
    body = [
        text_block(headline, size="large", weight="bolder", style="heading"),
        fact_set(facts),
        text_block("Top resources by cost this period", weight="bolder", spacing="medium"),
        *_top(top),
        *_state(state),
    ]
    return adaptive_card(body, _actions(key, state, itsm=itsm))


def _money(amount: float, unit: str) -> str:
    return f"{amount:,.2f} {unit}".strip()


def _top(top: Sequence[ResourceCost]) -> list[JSON]:
    """The costliest resources, one fact each (name → cost), or a line saying there are none."""
    if not top:
        return [text_block(NO_COST_DATA, isSubtle=True)]
    rows = [
        (inert(cost.resource_id.rsplit("/", 1)[-1]) or "(unnamed)", cost.shown())
        for cost in top[:TOP_RESOURCES]
    ]
    return [fact_set(rows)]


def _state(state: BudgetCard) -> list[JSON]:
    """Who acknowledged the alert, and its change (or that one is being opened)."""
    lines: list[JSON] = []
    if state.acknowledged_by:
        lines.append(
            text_block(f"Acknowledged by {inert(state.acknowledged_by)}", spacing="medium")
        )
    if state.change_number:
        lines.append(text_block(f"Change {inert(state.change_number)} opened"))
    elif state.change_requested:
        lines.append(text_block("Opening a change; the card shows it once it exists."))
    return lines


def _actions(key: str, state: BudgetCard, *, itsm: bool) -> list[JSON]:
    actions: list[JSON] = []
    if not state.acknowledged_by:
        actions.append(execute("Acknowledge", CardVerb.BUDGET_ACKNOWLEDGE.value, {"alert": key}))
    if itsm and not state.change_requested and not state.change_number:
        actions.append(execute("Open change", CardVerb.BUDGET_OPEN_CHANGE.value, {"alert": key}))
    url = safe_url(state.change_url)
    if state.change_number and url:
        actions.append(open_url(f"Open {inert(state.change_number)}", url))
    return actions


def budget_subscribed_card(key: str, moved_from: str | None) -> JSON:
    """The reply to ``subscribe budgets``: scope ``key``'s alerts come here from now on
    (``moved_from``: the conversation that had them until now)."""
    scope = inert(scope_path(key))
    lines = [
        text_block("Subscribed to budget alerts", weight="bolder", color="good", size="medium"),
        text_block(f"I'll post the budget alerts of {scope} to this conversation."),
    ]
    if moved_from:
        lines.append(text_block("They no longer go to the conversation that had them before."))
    if "/" not in key:
        lines.append(
            text_block("A resource group subscribed elsewhere keeps its own alerts.", isSubtle=True)
        )
    stop = f"{command_named('unsubscribe budgets').name} {scope}"
    lines.append(rich_text("To stop, type ", _command(stop), ".", spacing="medium"))
    return adaptive_card(lines)


def budget_unsubscribed_card(key: str, had: bool) -> JSON:
    """The reply to ``unsubscribe budgets``; says so when this conversation did not have it."""
    scope = inert(scope_path(key))
    if had:
        heading = text_block("Unsubscribed from budget alerts", weight="bolder", size="medium")
        detail = text_block(
            f"I won't post the budget alerts of {scope} here any more; they go where the "
            "settings send them, else to the operators' channel."
        )
    else:
        heading = text_block("Not subscribed", weight="bolder", size="medium")
        detail = text_block(f"This conversation wasn't subscribed to {scope}; nothing changed.")
    return adaptive_card([heading, detail])


def _command(text: str) -> JSON:
    """``text`` as a command to type: a bold monospace ``TextRun``."""
    return text_run(text, fontType="monospace", weight="bolder")
