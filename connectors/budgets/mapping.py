"""Azure budget notifications → :class:`core.budgets.BudgetAlert`, from either schema.

An action group posts a budget's notification in the budget alert schema
(``schemaId: "AIP Budget Notification"``: plain numbers as strings under ``data``) or, when
the group uses the common alert schema, as ``azureMonitorCommonAlertSchema`` with the
budget under ``data.alertContext.AlertData`` (amounts formatted with a currency sign, the
scope as an ARM path). Anything else is :class:`InvalidPayload` naming the field.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from core.budgets import BudgetAlert
from core.errors import InvalidPayload

BUDGET_SCHEMA = "AIP Budget Notification"
COMMON_SCHEMA = "azureMonitorCommonAlertSchema"
_SCOPE = re.compile(r"^/subscriptions/(?P<sub>[^/]+)(?:/resourceGroups/(?P<rg>[^/]+))?/?$", re.I)
_AMOUNT = re.compile(r"-?[0-9][0-9,]*(?:\.[0-9]+)?|-?\.[0-9]+")


def budget_alert(body: Any, *, now: datetime | None = None) -> BudgetAlert:
    """The alert in ``body``, either schema; ``now`` stands for a missing fired time."""
    if not isinstance(body, dict):
        raise InvalidPayload("the body is not a JSON object", field="schemaId")
    schema = body.get("schemaId")
    data = _object(body, "data", "data")
    received = now or datetime.now(UTC)
    if schema == BUDGET_SCHEMA:
        return _budget_schema(data, received)
    if schema == COMMON_SCHEMA:
        return _common_schema(data, received)
    raise InvalidPayload(
        f"schemaId must be {BUDGET_SCHEMA!r} or {COMMON_SCHEMA!r}", field="schemaId"
    )


def _budget_schema(data: dict[str, Any], received: datetime) -> BudgetAlert:
    """The budget alert schema's ``data``."""
    group = str(data.get("ResourceGroup") or "").strip() or None
    return BudgetAlert(
        budget_name=_text(data, "BudgetName", "data.BudgetName"),
        subscription_id=_text(data, "SubscriptionId", "data.SubscriptionId"),
        resource_group=group,
        budget=_amount(data, "Budget", "data.Budget"),
        spent=_amount(data, "SpendingAmount", "data.SpendingAmount"),
        threshold=_amount(data, "NotificationThresholdAmount", "data.NotificationThresholdAmount"),
        unit=str(data.get("Unit") or ""),
        period_start=_date(data, "BudgetStartDate", "data.BudgetStartDate"),
        fired_at=received,
        subscription_name=str(data.get("SubscriptionName") or ""),
    )


# The common alert schema of a cost budget alert, as Microsoft's samples show it
# (MicrosoftDocs/azure-docs, articles/azure-monitor/alerts/
# alerts-common-schema-test-action-definitions.md, "Actual Cost Budget" and "Forecasted
# Budget"): essentials.monitoringService "CostAlerts", firedDateTime set, alertRule, severity
# and alertTargetIDs null; alertContext.AlertCategory "budgets" and alertContext.AlertData
# with Scope ("/subscriptions/<id>/", trailing slash), ThresholdType ("Actual" or
# "Forecasted"), BudgetType, BudgetThreshold (the budget's amount), NotificationThresholdAmount
# (the threshold's amount), BudgetName, BudgetId, BudgetStartDate ("2022-11-01"),
# BudgetCreator, Unit, SpentAmount, and ForecastedTotalForPeriod on forecast alerts only; the
# amounts are text with a currency sign and thousands separators ("$11,111.00").
def _common_schema(data: dict[str, Any], received: datetime) -> BudgetAlert:
    """The common alert schema's ``data`` of a cost budget alert."""
    where = "data.alertContext"
    context = _object(data, "alertContext", where)
    category = context.get("AlertCategory")
    if isinstance(category, str) and category.lower() != "budgets":
        raise InvalidPayload(
            f"{where}.AlertCategory is {category!r}, not 'budgets': not a budget alert",
            field=f"{where}.AlertCategory",
        )
    found_essentials = data.get("essentials")
    essentials = found_essentials if isinstance(found_essentials, dict) else {}
    alert_data = _object(context, "AlertData", f"{where}.AlertData")
    at = f"{where}.AlertData"
    found = _SCOPE.match(_text(alert_data, "Scope", f"{at}.Scope"))
    if found is None:
        raise InvalidPayload("Scope is not a subscription or resource group", field=f"{at}.Scope")
    return BudgetAlert(
        budget_name=_text(alert_data, "BudgetName", f"{at}.BudgetName"),
        subscription_id=found["sub"],
        resource_group=found["rg"],
        budget=_amount(alert_data, "BudgetThreshold", f"{at}.BudgetThreshold"),
        spent=_amount(alert_data, "SpentAmount", f"{at}.SpentAmount"),
        threshold=_amount(
            alert_data, "NotificationThresholdAmount", f"{at}.NotificationThresholdAmount"
        ),
        unit=str(alert_data.get("Unit") or ""),
        period_start=_date(alert_data, "BudgetStartDate", f"{at}.BudgetStartDate"),
        fired_at=_fired(essentials.get("firedDateTime"), received),
        forecast=_optional_amount(alert_data, "ForecastedTotalForPeriod", at),
        threshold_type=str(alert_data.get("ThresholdType") or "Actual"),
    )


def _object(parent: dict[str, Any], name: str, field: str) -> dict[str, Any]:
    value = parent.get(name)
    if not isinstance(value, dict):
        raise InvalidPayload(f"{field} must be an object", field=field)
    return value


def _text(parent: dict[str, Any], name: str, field: str) -> str:
    value = parent.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidPayload(f"{field} is required", field=field)
    return value.strip()


def _amount(parent: dict[str, Any], name: str, field: str) -> float:
    """A number sent as a number or as text (``"1,234.50"``, ``"$25.00"``, ``"€ 10"``)."""
    value = parent.get(name)
    if isinstance(value, bool):
        raise InvalidPayload(f"{field} must be an amount", field=field)
    if isinstance(value, int | float):
        return float(value)
    found = _AMOUNT.search(value) if isinstance(value, str) else None
    if found is None:
        raise InvalidPayload(f"{field} must be an amount", field=field)
    return float(found.group().replace(",", ""))


def _optional_amount(parent: dict[str, Any], name: str, at: str) -> float | None:
    """An amount that may be absent (or empty): None then."""
    if parent.get(name) in (None, ""):
        return None
    return _amount(parent, name, f"{at}.{name}")


def _date(parent: dict[str, Any], name: str, field: str) -> date:
    """A date as ISO (``2026-11-01``, optionally with a time) or US (``11/1/2026``)."""
    text = _text(parent, name, field)
    for pattern in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return datetime.strptime(text.split("T")[0].split(" ")[0], pattern).date()
        except ValueError:
            continue
    raise InvalidPayload(f"{field} must be a date", field=field)


def _fired(value: Any, received: datetime) -> datetime:
    """The alert's fired time (ISO 8601, UTC when unzoned), else when it was received."""
    if not isinstance(value, str):
        return received
    try:
        fired = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return received
    return fired if fired.tzinfo else fired.replace(tzinfo=UTC)
