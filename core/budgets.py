"""Azure budget alerts as Warden sees them, whatever schema the action group sent.

A :class:`BudgetAlert` is one notification of one budget crossing one threshold in one budget
period; its :attr:`BudgetAlert.key` (budget, scope, period, threshold) is what a resend
repeats, so Warden stores it once. :func:`channel_for` picks the conversation it goes to.
Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class BudgetAlert:
    """One budget notification: amounts in the budget's ``unit`` (its currency)."""

    budget_name: str
    subscription_id: str
    resource_group: str | None
    budget: float
    spent: float
    threshold: float
    unit: str
    period_start: date
    fired_at: datetime
    forecast: float | None = None
    threshold_type: str = "Actual"
    subscription_name: str = ""

    @property
    def key(self) -> str:
        """The alert's identity: the same budget, scope, period and threshold is a resend."""
        scope = self.scope.lower()
        kind = self.threshold_type.lower()
        return f"{scope}|{self.budget_name}|{self.period_start}|{kind}|{self.threshold:g}"

    @property
    def scope(self) -> str:
        """The budget's scope as an ARM path (subscription, or one of its resource groups)."""
        path = f"/subscriptions/{self.subscription_id}"
        return f"{path}/resourceGroups/{self.resource_group}" if self.resource_group else path

    @property
    def threshold_percent(self) -> int:
        """The threshold as a whole percentage of the budget (0 for a zero budget)."""
        return round(self.threshold / self.budget * 100) if self.budget else 0

    @property
    def spent_percent(self) -> int:
        """What is spent, as a whole percentage of the budget (0 for a zero budget)."""
        return round(self.spent / self.budget * 100) if self.budget else 0


@dataclass(frozen=True)
class BudgetCard:
    """What a budget alert's card shows besides the alert: who acknowledged, which change."""

    acknowledged_by: str | None = None
    change_number: str | None = None
    change_url: str | None = None
    change_requested: bool = False


_GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_SCOPE_TEXT = re.compile(
    rf"(?:/subscriptions/)?(?P<sub>{_GUID})(?:/resourcegroups/(?P<rg>[-\w.()]{{0,89}}[-\w()]))?/?",
    re.IGNORECASE,
)
SCOPE_HELP = (
    "give a subscription id (e.g. 11111111-2222-3333-4444-555555555555) or a resource group "
    "as /subscriptions/<subscription id>/resourceGroups/<group name>"
)
"""What a budget scope looks like, for the error that refuses another."""


def scope_key(text: str) -> str:
    """The routing key of a typed budget scope: ``<subscription>`` or ``<subscription>/<group>``,
    lower case; ``ValueError`` saying what a scope looks like when ``text`` is none."""
    found = _SCOPE_TEXT.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"“{text.strip()}” is not a budget scope: {SCOPE_HELP}.")
    key = found["sub"].lower()
    return f"{key}/{found['rg'].lower()}" if found["rg"] else key


def scope_path(key: str) -> str:
    """The ARM path of a routing key (``/subscriptions/<id>[/resourceGroups/<group>]``)."""
    subscription, _, group = key.partition("/")
    path = f"/subscriptions/{subscription}"
    return f"{path}/resourceGroups/{group}" if group else path


def channel_for(
    alert: BudgetAlert,
    channels: Mapping[str, str],
    operators: str,
    chat: Mapping[str, str] | None = None,
) -> str:
    """The conversation of ``alert``: its resource group's, else its subscription's, else
    the operators' (keys are lower case: ``<subscription>`` or ``<subscription>/<group>``).
    ``chat`` holds the scopes subscribed from Teams (``subscribe budgets``): they count with
    ``channels`` (the settings' map) and win over it for the same scope; a resource group's
    mapping, from either, wins over its subscription's."""
    channels = {**channels, **(chat or {})}
    subscription = alert.subscription_id.lower()
    if alert.resource_group:
        found = channels.get(f"{subscription}/{alert.resource_group.lower()}")
        if found:
            return found
    return channels.get(subscription) or operators
