"""Azure budget alerts over HTTP: webhook (both schemas) → a card in the mapped channel."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from app import STORE
from bot.budgets import change_correlation
from cards.verbs import CardVerb
from core.costs import ExportRun, ResourceDay
from core.settings.budgets import BudgetsSettings
from core.settings.servicenow import ServiceNowSettings
from core.store import budgets as budgets_store
from core.store import costs as costs_store
from core.store.store import Store
from sandbox.servicenow import ServiceNowSandbox
from tests.integration.conftest import Warden, WardenFactory
from tests.support import (
    assert_answer_described,
    channel_id,
    invoke_activity,
    openapi_validator,
)
from web.health import mounted_routes

TOKEN = "budget-token-" + "b" * 24
OLD_TOKEN = "budget-token-" + "a" * 24
SUB = "11111111-2222-3333-4444-555555555555"
TODAY = datetime.now(UTC).date()
START = TODAY.replace(day=1)
FINANCE, OPERATORS = channel_id("finance"), channel_id("operators")


def budget_schema(**data: Any) -> dict[str, Any]:
    """A budget notification in the budget alert schema."""
    fields = {
        "SubscriptionName": "Contoso prod",
        "SubscriptionId": SUB,
        "ResourceGroup": "",
        "SpendingAmount": "1050.25",
        "BudgetStartDate": START.isoformat(),
        "Budget": "1000",
        "Unit": "EUR",
        "BudgetCreator": "owner@contoso.example",
        "BudgetName": "prod-monthly",
        "BudgetType": "Cost",
        "NotificationThresholdAmount": "800",
        **data,
    }
    return {"schemaId": "AIP Budget Notification", "data": fields}


def common_schema(scope: str, **alert_data: Any) -> dict[str, Any]:
    """A budget notification in the common alert schema."""
    fields = {
        "Scope": scope,
        "ThresholdType": "Forecasted",
        "BudgetType": "Cost",
        "BudgetThreshold": "$2,000.00",
        "NotificationThresholdAmount": "$1,800.00",
        "BudgetName": "web-rg",
        "BudgetStartDate": START.isoformat(),
        "Unit": "USD",
        "SpentAmount": "$1,200.00",
        "ForecastedTotalForPeriod": "$2,150.00",
        **alert_data,
    }
    essentials = {
        "alertId": f"/subscriptions/{SUB}/providers/Microsoft.AlertsManagement/alerts/a1",
        "alertRule": "web-rg",
        "severity": "Sev4",
        "signalType": "Log",
        "monitorCondition": "Fired",
        "monitoringService": "CostAlerts",
        "alertTargetIDs": [scope],
        "firedDateTime": datetime.now(UTC).isoformat(),
    }
    context = {"AlertCategory": "budgets", "AlertData": fields}
    return {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {"essentials": essentials, "alertContext": context},
    }


async def add_costs(store: Store, costs: dict[str, float], group: str = "web") -> None:
    """Ingest one completed export run with today's cost of each resource name."""
    run_key = f"run-{uuid.uuid4().hex}"
    run = ExportRun(run_key, run_key, run_key, START.isoformat(), TODAY.isoformat(), 1.0, 1)
    blob = await costs_store.start_blob(store, run, f"{run_key}/part0.csv", "etag")
    days = [
        ResourceDay(
            f"/subscriptions/{SUB}/resourcegroups/{group}/providers/x/y/{name}",
            TODAY.isoformat(),
            cost,
            "EUR",
            SUB,
            group,
        )
        for name, cost in costs.items()
    ]
    await costs_store.finish_blob(store, blob, len(days), days)


async def budget_warden(start_warden: WardenFactory, **more: Any) -> Warden:
    """A Warden taking budget alerts, installed in the finance and operators channels."""
    budgets = BudgetsSettings(
        webhook_tokens=[SecretStr(OLD_TOKEN), SecretStr(TOKEN)],
        channels={SUB: FINANCE},
        operators_channel=OPERATORS,
    )
    warden = await start_warden(budgets=budgets, **more)
    await warden.install(FINANCE)
    await warden.install(OPERATORS)
    return warden


async def send(warden: Warden, body: Any, token: str = TOKEN) -> Any:
    """POST a budget alert to the webhook with ``token``."""
    return await warden.client.post(f"/api/webhooks/budgets?token={token}", json=body)


def budget_cards(warden: Warden, conversation: str) -> list[dict[str, Any]]:
    """The budget cards posted (not updated) in ``conversation``."""
    found = []
    for record in warden.connector.posts(conversation, successful=True):
        for attachment in record.body.get("attachments") or []:
            content = attachment.get("content", {})
            verbs = {a.get("verb") for a in content.get("actions", [])}
            if CardVerb.BUDGET_ACKNOWLEDGE.value in verbs:
                found.append(content)
    return found


def texts(card: dict[str, Any]) -> str:
    """Every text and fact of a card, one string."""
    parts: list[str] = []
    for item in card["body"]:
        parts.append(item.get("text", ""))
        parts += [f"{f['title']}: {f['value']}" for f in item.get("facts", [])]
    return "\n".join(parts)


async def test_budget_webhook_budget_schema_posts_card_with_top_resources(
    start_warden: WardenFactory,
) -> None:
    """A budget-schema alert becomes a card in its subscription's channel, top costs first."""
    warden = await budget_warden(start_warden)
    store = warden.client.app[STORE]
    await add_costs(store, {f"vm{i}": float(i * 10) for i in range(1, 8)})
    response = await send(warden, budget_schema())
    assert response.status == 202, await response.text()
    await warden.delivered(1)
    [card] = budget_cards(warden, FINANCE)
    shown = texts(card)
    assert "prod-monthly crossed 80%" in shown
    assert "Spent: 1,050.25 EUR of 1,000.00 EUR" in shown
    listed = [f["title"] for f in card["body"][3]["facts"]]
    assert listed == ["vm7", "vm6", "vm5", "vm4", "vm3"]
    assert budget_cards(warden, OPERATORS) == []


async def test_budget_webhook_common_schema_unmapped_goes_to_operators(
    start_warden: WardenFactory,
) -> None:
    """A common-schema alert of an unmapped subscription lands in the operators' channel."""
    warden = await budget_warden(start_warden)
    other = "99999999-2222-3333-4444-555555555555"
    scope = f"/subscriptions/{other}/resourceGroups/web"
    response = await send(warden, common_schema(scope), token=OLD_TOKEN)
    assert response.status == 202, await response.text()
    await warden.delivered(1)
    [card] = budget_cards(warden, OPERATORS)
    shown = texts(card)
    assert "web-rg crossed 90%" in shown and "Forecast: 2,150.00 USD" in shown
    assert "No cost data ingested yet" in shown
    assert budget_cards(warden, FINANCE) == []


async def test_budget_webhook_resend_posts_one_card(start_warden: WardenFactory) -> None:
    """The same alert sent twice is stored once and carded once."""
    warden = await budget_warden(start_warden)
    first = await send(warden, budget_schema())
    again = await send(warden, budget_schema())
    assert (first.status, again.status) == (202, 202)
    assert (await again.json())["duplicate"] is True
    await warden.delivered(1)
    assert await warden.jobs() == 1
    assert len(budget_cards(warden, FINANCE)) == 1


async def test_budget_webhook_wrong_token_is_401(start_warden: WardenFactory) -> None:
    """A wrong or missing token is refused with a problem body; nothing is stored."""
    warden = await budget_warden(start_warden)
    wrong = await send(warden, budget_schema(), token="x" * 40)
    missing = await warden.client.post("/api/webhooks/budgets", json=budget_schema())
    for response in (wrong, missing):
        assert response.status == 401
        assert response.content_type == "application/problem+json"
    assert await warden.jobs() == 0


async def test_budget_webhook_body_not_utf8_is_400_not_json(start_warden: WardenFactory) -> None:
    """A body that is not UTF-8 is refused as not JSON (a problem body), not a 500."""
    warden = await budget_warden(start_warden)
    response = await warden.client.post(
        f"/api/webhooks/budgets?token={TOKEN}",
        data=b'{"schemaId": "\xff"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 400
    assert (await response.json())["title"] == "Not JSON"
    assert await warden.jobs() == 0


async def test_budget_webhook_bad_body_is_400_naming_field(start_warden: WardenFactory) -> None:
    """A body without the budget's amount is refused, naming the field."""
    warden = await budget_warden(start_warden)
    body = budget_schema(Budget="lots")
    response = await send(warden, body)
    assert response.status == 400
    assert (await response.json())["field"] == "data.Budget"
    scope_less = common_schema("/providers/whatever")
    response = await send(warden, scope_less)
    assert (await response.json())["field"] == "data.alertContext.AlertData.Scope"
    assert await warden.jobs() == 0


async def click(warden: Warden, verb: CardVerb, key: str) -> dict[str, Any]:
    """Click a budget card's button in the finance channel; the card answered."""
    stored = await budgets_store.stored(warden.client.app[STORE], key)
    assert stored is not None and stored.activity_id is not None
    activity = invoke_activity(warden.connector.url, FINANCE, verb.value, {"alert": key})
    activity["replyToId"] = stored.activity_id  # the card's own message
    activity["conversation"]["id"] = f"{FINANCE};messageid={stored.activity_id}"
    response = await warden.client.post("/api/messages", json=activity)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = (await response.json())["value"]
    return body


async def test_budget_card_acknowledge_records_who(start_warden: WardenFactory) -> None:
    """*Acknowledge* answers with the card naming who acknowledged it, button gone."""
    warden = await budget_warden(start_warden)
    key = (await (await send(warden, budget_schema())).json())["alert"]
    await warden.delivered(1)
    [card] = budget_cards(warden, FINANCE)
    assert [a["title"] for a in card["actions"]] == ["Acknowledge"]  # no ITSM: no change
    redrawn = await click(warden, CardVerb.BUDGET_ACKNOWLEDGE, key)
    assert "Acknowledged by" in texts(redrawn)
    assert "actions" not in redrawn


async def test_budget_card_open_change_creates_servicenow_change(
    start_warden: WardenFactory, snow: ServiceNowSandbox
) -> None:
    """*Open change* creates one change in ServiceNow and the card shows its number."""
    servicenow = ServiceNowSettings(
        instance_url=snow.url, username=snow.username, password=SecretStr(snow.password)
    )
    warden = await budget_warden(start_warden, servicenow=servicenow)
    key = (await (await send(warden, budget_schema())).json())["alert"]
    await warden.delivered(1)
    [card] = budget_cards(warden, FINANCE)
    assert [a["title"] for a in card["actions"]] == ["Acknowledge", "Open change"]
    answer = await click(warden, CardVerb.BUDGET_OPEN_CHANGE, key)
    assert "Opening a change" in texts(answer)
    await warden.delivered(4)  # the card, its redraw at the click, the change, the redraw
    change = snow.find_by("change_request", "correlation_id", change_correlation(key))
    assert change is not None
    assert "prod-monthly crossed 80%" in change["short_description"]
    updates = warden.connector.updates(FINANCE, successful=True)
    last = updates[-1].body["attachments"][0]["content"]
    assert f"Change {change['number']} opened" in texts(last)


async def test_budget_webhook_in_openapi_document_with_both_bodies_and_answers(
    start_warden: WardenFactory,
) -> None:
    """The served OpenAPI document describes the budget webhook: both schemas' bodies
    validate against its request body, and its 202, 400 and 401 answers match."""
    warden = await budget_warden(start_warden)
    document = await (await warden.client.get("/openapi.json")).json()
    assert ("POST", "/api/webhooks/budgets") in mounted_routes(warden.client.app)
    operation = document["paths"]["/api/webhooks/budgets"]["post"]
    assert [p["name"] for p in operation["parameters"]] == ["token"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    for sample in (budget_schema(), common_schema(f"/subscriptions/{SUB}/resourceGroups/web")):
        assert not list(openapi_validator(document, body).iter_errors(sample))
    assert list(openapi_validator(document, body).iter_errors({"schemaId": "x", "data": {}}))
    answers = {
        202: await send(warden, budget_schema()),
        400: await send(warden, budget_schema(Budget="lots")),
        401: await send(warden, budget_schema(), token="x" * 30),
    }
    for status, response in answers.items():
        assert response.status == status
        await assert_answer_described(document, operation, response)
