"""Sample Azure budget notifications, as an action group's webhook sends them.

``budget_alert`` is the budget alert schema (``schemaId`` "AIP Budget Notification") a cost
budget sends when its threshold is met; the demo command and tests use it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def budget_alert(
    subscription_id: str,
    *,
    resource_group: str = "",
    name: str = "prod-monthly",
    budget: float = 1000.0,
    spent: float = 1050.25,
    threshold: float = 800.0,
    currency: str = "EUR",
) -> dict[str, Any]:
    """A budget notification of the current month's budget ``name`` of the scope (the
    subscription, or one of its resource groups)."""
    start = datetime.now(UTC).date().replace(day=1)
    return {
        "schemaId": "AIP Budget Notification",
        "data": {
            "SubscriptionName": "Contoso prod",
            "SubscriptionId": subscription_id,
            "ResourceGroup": resource_group,
            "SpendingAmount": f"{spent:.2f}",
            "BudgetStartDate": start.isoformat(),
            "Budget": f"{budget:g}",
            "Unit": currency,
            "BudgetCreator": "owner@contoso.example",
            "BudgetName": name,
            "BudgetType": "Cost",
            "NotificationThresholdAmount": f"{threshold:g}",
        },
    }
