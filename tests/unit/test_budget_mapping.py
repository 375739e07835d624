"""Azure budget notifications (both schemas) → ``BudgetAlert``, and where each is posted.

The common-schema samples follow Microsoft's test-action samples of a cost budget alert
(``alerts-common-schema-test-action-definitions.md``: "Actual Cost Budget", "Forecasted
Budget"); the budget-schema one follows the budget alert schema's sample.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from typing import Any

import pytest

from connectors.budgets.mapping import budget_alert
from core.budgets import channel_for, scope_key, scope_path
from core.errors import InvalidPayload

SUB = "11111111-1111-1111-1111-111111111111"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

BUDGET_SCHEMA: dict[str, Any] = {
    "schemaId": "AIP Budget Notification",
    "data": {
        "SubscriptionName": "test-subscription",
        "SubscriptionId": SUB,
        "EnrollmentNumber": "",
        "DepartmentName": "test-budgetDepartmentName",
        "AccountName": "test-budgetAccountName",
        "BillingAccountId": "",
        "BillingProfileId": "",
        "InvoiceSectionId": "",
        "ResourceGroup": "test-RG",
        "SpendingAmount": "1111.32",
        "BudgetStartDate": "11/17/2021 5:40:29 PM -08:00",
        "Budget": "10000",
        "Unit": "USD",
        "BudgetCreator": "email@domain.com",
        "BudgetName": "test-budgetName",
        "BudgetType": "Cost",
        "NotificationThresholdAmount": "8000.0",
    },
}

ACTUAL_COMMON: dict[str, Any] = {
    "schemaId": "azureMonitorCommonAlertSchema",
    "data": {
        "essentials": {
            "monitoringService": "CostAlerts",
            "firedDateTime": "2022-12-07T21:13:20.645Z",
            "description": "Your spend for budget Test_actual_cost_budget is now $11,111.00 "
            "exceeding your specified threshold $25.00.",
            "essentialsVersion": "1.0",
            "alertContextVersion": "1.0",
            "alertId": f"/subscriptions/{SUB}/providers/Microsoft.CostManagement/alerts/Test_Alert",
            "alertRule": None,
            "severity": None,
            "signalType": None,
            "monitorCondition": None,
            "alertTargetIDs": None,
            "configurationItems": ["budgets"],
            "originAlertId": None,
        },
        "alertContext": {
            "AlertCategory": "budgets",
            "AlertData": {
                "Scope": f"/subscriptions/{SUB}/",
                "ThresholdType": "Actual",
                "BudgetType": "Cost",
                "BudgetThreshold": "$50.00",
                "NotificationThresholdAmount": "$25.00",
                "BudgetName": "Test_actual_cost_budget",
                "BudgetId": f"/subscriptions/{SUB}/providers/Microsoft.Consumption/budgets/x",
                "BudgetStartDate": "2022-11-01",
                "BudgetCreator": "test@sample.test",
                "Unit": "USD",
                "SpentAmount": "$11,111.00",
            },
        },
    },
}


def forecast_common() -> dict[str, Any]:
    """The forecast sample: same budget shape, a forecast and ThresholdType Forecasted."""
    body = copy.deepcopy(ACTUAL_COMMON)
    data = body["data"]["alertContext"]["AlertData"]
    data.update(
        ThresholdType="Forecasted",
        NotificationThresholdAmount="$50.00",
        SpentAmount="$999.99",
        ForecastedTotalForPeriod="$1111.11",
        Scope=f"/subscriptions/{SUB}/resourceGroups/Web-RG",
    )
    return body


def test_budget_schema_sample_maps_amounts_group_and_us_date() -> None:
    """The budget alert schema: text amounts, its resource group, a US date with a time."""
    alert = budget_alert(BUDGET_SCHEMA, now=NOW)
    assert (alert.budget_name, alert.subscription_id) == ("test-budgetName", SUB)
    assert alert.resource_group == "test-RG"
    assert (alert.budget, alert.spent, alert.threshold) == (10000.0, 1111.32, 8000.0)
    assert (alert.unit, alert.period_start) == ("USD", date(2021, 11, 17))
    assert alert.threshold_percent == 80 and alert.spent_percent == 11
    assert (alert.threshold_type, alert.forecast, alert.fired_at) == ("Actual", None, NOW)
    assert alert.scope == f"/subscriptions/{SUB}/resourceGroups/test-RG"


def test_budget_schema_empty_resource_group_is_subscription_scope() -> None:
    """An empty ResourceGroup means the budget is the subscription's."""
    body = copy.deepcopy(BUDGET_SCHEMA)
    body["data"]["ResourceGroup"] = ""
    alert = budget_alert(body, now=NOW)
    assert alert.resource_group is None and alert.scope == f"/subscriptions/{SUB}"


def test_common_schema_actual_sample_reads_currency_amounts_and_fired_time() -> None:
    """The common schema's actual-cost sample: "$11,111.00" amounts, the scope's trailing
    slash, the fired time from essentials, no forecast."""
    alert = budget_alert(ACTUAL_COMMON, now=NOW)
    assert (alert.subscription_id, alert.resource_group) == (SUB, None)
    assert (alert.budget, alert.spent, alert.threshold) == (50.0, 11111.0, 25.0)
    assert alert.threshold_percent == 50
    assert (alert.threshold_type, alert.forecast) == ("Actual", None)
    assert alert.fired_at == datetime(2022, 12, 7, 21, 13, 20, 645000, tzinfo=UTC)
    assert alert.period_start == date(2022, 11, 1)


def test_common_schema_forecast_sample_keeps_forecast_and_is_another_alert() -> None:
    """A forecast alert carries its forecast and never counts as a resend of an actual one."""
    forecast = budget_alert(forecast_common(), now=NOW)
    assert (forecast.threshold_type, forecast.forecast) == ("Forecasted", 1111.11)
    assert forecast.resource_group == "Web-RG"
    actual = budget_alert(ACTUAL_COMMON, now=NOW)
    assert forecast.key != actual.key
    again = budget_alert(forecast_common(), now=datetime(2027, 1, 1, tzinfo=UTC))
    assert again.key == forecast.key  # the same notification sent again: the same key


def test_common_schema_unparseable_fired_time_uses_received() -> None:
    """A fired time that is not ISO 8601 falls back to when the alert was received."""
    body = copy.deepcopy(ACTUAL_COMMON)
    body["data"]["essentials"]["firedDateTime"] = "yesterday"
    assert budget_alert(body, now=NOW).fired_at == NOW


BUDGET_REQUIRED = ("BudgetName", "SubscriptionId", "Budget", "SpendingAmount")
COMMON_REQUIRED = ("Scope", "BudgetName", "BudgetThreshold", "SpentAmount")
BOTH_REQUIRED = ("NotificationThresholdAmount", "BudgetStartDate")


@pytest.mark.parametrize(
    ("sample", "at", "name"),
    [(BUDGET_SCHEMA, ("data",), n) for n in BUDGET_REQUIRED + BOTH_REQUIRED]
    + [
        (ACTUAL_COMMON, ("data", "alertContext", "AlertData"), n)
        for n in COMMON_REQUIRED + BOTH_REQUIRED
    ],
)
def test_missing_field_is_named(sample: dict[str, Any], at: tuple[str, ...], name: str) -> None:
    """Each required field of either schema, missing, is named in the error."""
    body = copy.deepcopy(sample)
    parent = body
    for step in at:
        parent = parent[step]
    del parent[name]
    with pytest.raises(InvalidPayload) as raised:
        budget_alert(body, now=NOW)
    field = ".".join((*at, name))
    assert raised.value.field == field and field in str(raised.value)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"Budget": "lots"}, "data.Budget"),
        ({"SpendingAmount": True}, "data.SpendingAmount"),
        ({"BudgetStartDate": "the first"}, "data.BudgetStartDate"),
        ({"BudgetName": "   "}, "data.BudgetName"),
    ],
)
def test_budget_schema_bad_value_is_named(change: dict[str, Any], field: str) -> None:
    """A value that is not an amount, a date or a name is refused, naming its field."""
    body = copy.deepcopy(BUDGET_SCHEMA)
    body["data"].update(change)
    with pytest.raises(InvalidPayload) as raised:
        budget_alert(body, now=NOW)
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "schemaId"),
        ({"schemaId": "Microsoft.Insights/activityLogs", "data": {}}, "schemaId"),
        ({"schemaId": "AIP Budget Notification"}, "data"),
        ({"schemaId": "azureMonitorCommonAlertSchema", "data": {}}, "data.alertContext"),
    ],
)
def test_not_a_budget_alert_is_refused_naming_field(body: Any, field: str) -> None:
    """A body of another shape is refused, naming where it went wrong."""
    with pytest.raises(InvalidPayload) as raised:
        budget_alert(body, now=NOW)
    assert raised.value.field == field


def test_common_schema_other_alert_category_is_not_a_budget_alert() -> None:
    """A common-schema alert of another category says it is not a budget alert."""
    body = copy.deepcopy(ACTUAL_COMMON)
    body["data"]["alertContext"]["AlertCategory"] = "Anomaly"
    with pytest.raises(InvalidPayload, match="not a budget alert") as raised:
        budget_alert(body, now=NOW)
    assert raised.value.field == "data.alertContext.AlertCategory"


def test_common_schema_scope_outside_a_subscription_is_refused() -> None:
    """A management group's scope is not one Warden routes: refused, naming Scope."""
    body = copy.deepcopy(ACTUAL_COMMON)
    body["data"]["alertContext"]["AlertData"]["Scope"] = "/providers/Microsoft.Management/x"
    with pytest.raises(InvalidPayload) as raised:
        budget_alert(body, now=NOW)
    assert raised.value.field == "data.alertContext.AlertData.Scope"


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        (SUB, SUB),
        (SUB.upper(), SUB),
        (f"/subscriptions/{SUB}", SUB),
        (f"/subscriptions/{SUB}/", SUB),
        (f"/subscriptions/{SUB}/resourceGroups/Web-RG", f"{SUB}/web-rg"),
        (f"/SUBSCRIPTIONS/{SUB}/RESOURCEGROUPS/rg.(a)_1", f"{SUB}/rg.(a)_1"),
    ],
)
def test_scope_key_accepts_subscription_or_group(typed: str, key: str) -> None:
    """A subscription id or a resource group's path becomes its lower-case routing key."""
    assert scope_key(typed) == key


@pytest.mark.parametrize(
    "typed",
    [
        "prod",
        "1111",
        f"{SUB}/web",
        f"/subscriptions/{SUB}/providers/Microsoft.Compute",
        f"/subscriptions/{SUB}/resourceGroups/",
        f"/subscriptions/{SUB}/resourceGroups/ends-with-dot.",
        f"/subscriptions/{SUB}/resourceGroups/{'a' * 91}",
    ],
)
def test_scope_key_refuses_other_text_saying_what_a_scope_is(typed: str) -> None:
    """Anything else is refused with what a scope looks like."""
    with pytest.raises(ValueError, match="/resourceGroups/<group name>"):
        scope_key(typed)


def test_scope_path_of_key_is_arm_path() -> None:
    """A routing key reads back as an ARM path."""
    assert scope_path(f"{SUB}/web") == f"/subscriptions/{SUB}/resourceGroups/web"
    assert scope_path(SUB) == f"/subscriptions/{SUB}"


def test_channel_for_group_wins_and_chat_wins_for_one_scope() -> None:
    """A resource group's mapping (settings or chat) wins over its subscription's; for the
    same scope the chat's wins; unmapped goes to the operators."""
    group = budget_alert(forecast_common(), now=NOW)  # resource group Web-RG
    whole = budget_alert(ACTUAL_COMMON, now=NOW)
    settings = {SUB: "finance", f"{SUB}/web-rg": "web-team"}
    assert channel_for(group, settings, "ops") == "web-team"
    assert channel_for(group, {SUB: "finance"}, "ops", {f"{SUB}/web-rg": "chat"}) == "chat"
    assert channel_for(group, {f"{SUB}/web-rg": "web-team"}, "ops", {SUB: "chat"}) == "web-team"
    assert channel_for(whole, settings, "ops", {SUB: "chat"}) == "chat"
    assert channel_for(whole, {}, "ops", {}) == "ops"
