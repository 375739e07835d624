"""Budget alerts drawn as cards, and the replies to ``subscribe budgets``.

The golden variants of ``tests/unit/test_cards.py`` for ``cards.budget``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from cards.budget import budget_card, budget_subscribed_card, budget_unsubscribed_card
from core.budgets import BudgetAlert, BudgetCard
from core.costs import ResourceCost

SUB = "11111111-2222-3333-4444-555555555555"
GROUP = f"/subscriptions/{SUB}/resourcegroups/web/providers/microsoft.compute/virtualmachines"

ACTUAL = BudgetAlert(
    budget_name="prod-monthly",
    subscription_id=SUB,
    resource_group=None,
    budget=1000.0,
    spent=1050.25,
    threshold=800.0,
    unit="EUR",
    period_start=date(2026, 11, 1),
    fired_at=datetime(2026, 11, 20, 7, 30, tzinfo=UTC),
    subscription_name="Contoso prod",
)
FORECAST = BudgetAlert(
    budget_name="web-rg",
    subscription_id=SUB,
    resource_group="web",
    budget=2000.0,
    spent=1200.0,
    threshold=1800.0,
    unit="USD",
    period_start=date(2026, 11, 1),
    fired_at=datetime(2026, 11, 20, 7, 30, tzinfo=UTC),
    forecast=2150.0,
    threshold_type="Forecasted",
)
TOP = [ResourceCost(f"{GROUP}/vm{i}", 100.0 * i, "EUR", "web") for i in (7, 6, 5, 4, 3, 2)]
KEY = ACTUAL.key

BUDGET_VARIANTS: dict[str, Callable[[], Any]] = {
    "budget_actual_top_resources": lambda: budget_card(ACTUAL, KEY, BudgetCard(), TOP),
    "budget_forecast_no_costs_itsm": lambda: budget_card(
        FORECAST, FORECAST.key, BudgetCard(), [], itsm=True
    ),
    "budget_acknowledged_change_opened": lambda: budget_card(
        ACTUAL,
        KEY,
        BudgetCard(
            acknowledged_by="Megan Bowen",
            change_number="CHG0030001",
            change_url="https://contoso.service-now.com/change_request.do?sys_id=abc",
            change_requested=True,
        ),
        TOP[:2],
        itsm=True,
    ),
    "budget_subscribed_subscription": lambda: budget_subscribed_card(SUB, None),
    "budget_subscribed_group_moved": lambda: budget_subscribed_card(f"{SUB}/web", "19:old"),
    "budget_unsubscribed": lambda: budget_unsubscribed_card(f"{SUB}/web", True),
    "budget_unsubscribed_not_here": lambda: budget_unsubscribed_card(SUB, False),
}
"""Budget cards by golden variant name."""
