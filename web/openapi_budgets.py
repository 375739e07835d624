"""``POST /api/webhooks/budgets`` in Warden's OpenAPI document (``web.openapi``).

Both bodies an action group sends for a budget are described: the budget alert schema
(``AIP Budget Notification``) and the common alert schema with a cost budget's
``alertContext`` (``connectors.budgets.mapping`` reads them). Only the fields Warden reads
are listed; an action group sends more, and the rest is ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Answer = Callable[..., dict[str, Any]]

_TEXT = {"type": "string"}
_AMOUNT = {
    "oneOf": [{"type": "number"}, {"type": "string"}],
    "description": "A number, or text such as `1050.25` or `$1,800.00`.",
}

BUDGET_SCHEMA = {
    "type": "object",
    "description": "An Azure budget notification in the budget alert schema.",
    "required": ["schemaId", "data"],
    "properties": {
        "schemaId": {"enum": ["AIP Budget Notification"]},
        "data": {
            "type": "object",
            "required": [
                "BudgetName",
                "SubscriptionId",
                "Budget",
                "SpendingAmount",
                "NotificationThresholdAmount",
                "BudgetStartDate",
            ],
            "properties": {
                "BudgetName": _TEXT,
                "SubscriptionId": _TEXT,
                "SubscriptionName": _TEXT,
                "ResourceGroup": {**_TEXT, "description": "Empty for a subscription's budget."},
                "Budget": _AMOUNT,
                "SpendingAmount": _AMOUNT,
                "NotificationThresholdAmount": _AMOUNT,
                "Unit": {**_TEXT, "description": "The budget's currency."},
                "BudgetStartDate": {**_TEXT, "description": "`2026-11-01` or `11/1/2026`."},
            },
        },
    },
}

COMMON_SCHEMA = {
    "type": "object",
    "description": "An Azure budget alert in the common alert schema (a cost budget's "
    '`alertContext`: `AlertCategory` `"budgets"`).',
    "required": ["schemaId", "data"],
    "properties": {
        "schemaId": {"enum": ["azureMonitorCommonAlertSchema"]},
        "data": {
            "type": "object",
            "required": ["alertContext"],
            "properties": {
                "essentials": {
                    "type": "object",
                    "properties": {
                        "monitoringService": _TEXT,
                        "firedDateTime": {**_TEXT, "description": "ISO 8601; else received."},
                    },
                },
                "alertContext": {
                    "type": "object",
                    "required": ["AlertData"],
                    "properties": {
                        "AlertCategory": {"enum": ["budgets"]},
                        "AlertData": {
                            "type": "object",
                            "required": [
                                "Scope",
                                "BudgetName",
                                "BudgetThreshold",
                                "SpentAmount",
                                "NotificationThresholdAmount",
                                "BudgetStartDate",
                            ],
                            "properties": {
                                "Scope": {
                                    **_TEXT,
                                    "description": "`/subscriptions/<id>[/resourceGroups/<g>]`",
                                },
                                "BudgetName": _TEXT,
                                "ThresholdType": {"enum": ["Actual", "Forecasted"]},
                                "BudgetThreshold": _AMOUNT,
                                "NotificationThresholdAmount": _AMOUNT,
                                "SpentAmount": _AMOUNT,
                                "ForecastedTotalForPeriod": _AMOUNT,
                                "Unit": _TEXT,
                                "BudgetStartDate": _TEXT,
                            },
                        },
                    },
                },
            },
        },
    },
}


def budget_webhook(problem: Answer, json: Answer) -> dict[str, Any]:
    """The path item of the budget webhook; ``problem`` and ``json`` draw its answers."""
    accepted = {
        "type": "object",
        "required": ["alert", "duplicate"],
        "properties": {
            "alert": {**_TEXT, "description": "Its key: budget, scope, period, threshold."},
            "duplicate": {"type": "boolean", "description": "A resend: no second card."},
        },
    }
    token = {
        "name": "token",
        "in": "query",
        "required": True,
        "description": "One of `WARDEN_BUDGETS__WEBHOOK_TOKENS` (action group webhooks are not "
        "signed; the URL's token is the credential).",
        "schema": _TEXT,
    }
    schemas = [
        {"$ref": "#/components/schemas/BudgetAlertSchema"},
        {"$ref": "#/components/schemas/CommonAlertSchemaBudget"},
    ]
    return {
        "post": {
            "summary": "Receive an Azure budget alert from an action group",
            "description": "Served while budget alerts are on (`WARDEN_BUDGETS__WEBHOOK_TOKENS`). "
            "The card goes to the conversation subscribed to the alert's resource group or "
            "subscription (`subscribe budgets` or `WARDEN_BUDGETS__CHANNELS`), else to "
            "`WARDEN_BUDGETS__OPERATORS_CHANNEL`.",
            "operationId": "budgetWebhook",
            "parameters": [token],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"oneOf": schemas}}},
            },
            "responses": {
                "202": json("Stored with its card job in one transaction, or a resend.", accepted),
                "400": problem("Not JSON, or not a budget alert (`field` names the culprit)."),
                "401": problem("Wrong or missing token."),
                "413": problem("Body over the size limit."),
                "415": problem("Not application/json."),
                "503": problem("The store could not commit (retry after `Retry-After`)."),
            },
        }
    }
