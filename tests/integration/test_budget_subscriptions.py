"""``subscribe budgets`` / ``unsubscribe budgets`` typed in Teams, then a budget alert
arriving at the webhook: it lands where the chat said, else where the settings say."""

from __future__ import annotations

from typing import Any

from app import STORE
from core.store import admin_audit
from tests.integration.conftest import Warden, WardenFactory
from tests.integration.test_budget_alerts import (
    FINANCE,
    OPERATORS,
    SUB,
    budget_cards,
    budget_schema,
    budget_warden,
    common_schema,
    send,
    texts,
)
from tests.support import channel_id

OTHER = "99999999-2222-3333-4444-555555555555"
SECURITY = channel_id("security")


async def chat_warden(start_warden: WardenFactory) -> Warden:
    """A Warden taking budget alerts, installed in finance, operators and security."""
    warden = await budget_warden(start_warden)
    await warden.install(SECURITY)
    return warden


async def accepted(warden: Warden, body: dict[str, Any]) -> None:
    """Send ``body`` to the budget webhook; it must be taken (202, not a duplicate)."""
    response = await send(warden, body)
    assert response.status == 202, await response.text()
    assert (await response.json())["duplicate"] is False


async def test_subscribe_budgets_subscription_alert_lands_in_that_channel(
    start_warden: WardenFactory,
) -> None:
    """After `subscribe budgets <subscription id>` its alerts come here; after
    `unsubscribe budgets` they go to the operators' channel."""
    warden = await chat_warden(start_warden)
    reply = texts(await warden.say(SECURITY, f"subscribe budgets {OTHER}"))
    assert "Subscribed to budget alerts" in reply and f"/subscriptions/{OTHER}" in reply
    await accepted(warden, budget_schema(SubscriptionId=OTHER))
    await warden.delivered(1)
    [card] = budget_cards(warden, SECURITY)
    assert "prod-monthly crossed 80%" in texts(card)
    reply = texts(await warden.say(SECURITY, f"unsubscribe budgets {OTHER}"))
    assert "Unsubscribed from budget alerts" in reply
    await accepted(warden, budget_schema(SubscriptionId=OTHER, NotificationThresholdAmount="900"))
    await warden.delivered(2)
    assert len(budget_cards(warden, SECURITY)) == 1
    [card] = budget_cards(warden, OPERATORS)
    assert "prod-monthly crossed 90%" in texts(card)


async def test_subscribe_budgets_resource_group_wins_over_subscription(
    start_warden: WardenFactory,
) -> None:
    """A resource group subscribed in chat takes its alerts; the rest of the subscription
    stays with the settings' channel."""
    warden = await chat_warden(start_warden)
    scope = f"/subscriptions/{SUB}/resourceGroups/Web"
    await warden.say(SECURITY, f"subscribe budgets {scope}")
    await accepted(warden, common_schema(f"/subscriptions/{SUB}/resourceGroups/web"))
    await accepted(warden, common_schema(f"/subscriptions/{SUB}/resourceGroups/data"))
    await warden.delivered(2)
    [card] = budget_cards(warden, SECURITY)
    assert f"/subscriptions/{SUB}/resourceGroups/web" in texts(card)
    [card] = budget_cards(warden, FINANCE)
    assert "resourceGroups/data" in texts(card)


async def test_subscribe_budgets_chat_wins_over_settings_for_one_scope(
    start_warden: WardenFactory,
) -> None:
    """A subscription mapped in the settings and subscribed in chat goes to the chat's."""
    warden = await chat_warden(start_warden)
    await warden.say(SECURITY, f"subscribe budgets {SUB}")
    await accepted(warden, budget_schema())
    await warden.delivered(1)
    assert len(budget_cards(warden, SECURITY)) == 1
    assert budget_cards(warden, FINANCE) == []
    store = warden.client.app[STORE]
    [entry] = [e for e in await admin_audit.entries(store) if e.action == "subscribe budgets"]
    assert entry.target == SECURITY


async def test_subscribe_budgets_bad_scope_is_explained_and_nothing_changes(
    start_warden: WardenFactory,
) -> None:
    """A scope that is neither a subscription id nor a resource group gets an error card
    saying what a scope looks like; the alert still goes where the settings say."""
    warden = await chat_warden(start_warden)
    for scope in ("prod", f"/subscriptions/{SUB}/providers/x", "1234"):
        reply = str(await warden.say(SECURITY, f"subscribe budgets {scope}"))
        assert "That scope needs another look" in reply
        assert "/subscriptions/<subscription id>/resourceGroups/<group name>" in reply
    reply = str(await warden.say(SECURITY, "subscribe budgets"))
    assert "subscribe budgets <subscription id" in reply
    await accepted(warden, budget_schema())
    await warden.delivered(1)
    assert len(budget_cards(warden, FINANCE)) == 1


async def test_status_lists_budget_scopes_subscribed_here(start_warden: WardenFactory) -> None:
    """`status` names the budget scopes subscribed in the conversation."""
    warden = await chat_warden(start_warden)
    await warden.say(SECURITY, f"subscribe budgets {OTHER}")
    await warden.say(SECURITY, f"subscribe budgets /subscriptions/{SUB}/resourceGroups/web")
    shown = texts(await warden.say(SECURITY, "status"))
    expected = f"/subscriptions/{SUB}/resourceGroups/web, /subscriptions/{OTHER}"
    assert f"Budget alerts: {expected}" in shown
    assert "Budget alerts" not in texts(await warden.say(FINANCE, "status"))


async def test_unsubscribe_budgets_elsewhere_changes_nothing(start_warden: WardenFactory) -> None:
    """`unsubscribe budgets` in a conversation that does not have the scope says so and
    leaves the subscribing conversation's alerts where they are."""
    warden = await chat_warden(start_warden)
    await warden.say(SECURITY, f"subscribe budgets {OTHER}")
    reply = texts(await warden.say(FINANCE, f"unsubscribe budgets {OTHER}"))
    assert "Not subscribed" in reply
    await accepted(warden, budget_schema(SubscriptionId=OTHER))
    await warden.delivered(1)
    assert len(budget_cards(warden, SECURITY)) == 1


async def test_subscribe_budgets_while_budget_alerts_are_off(warden: Warden) -> None:
    """Without a budget webhook the command says how budget alerts are switched on."""
    conversation = channel_id()
    await warden.install(conversation)
    reply = str(await warden.say(conversation, f"subscribe budgets {SUB}"))
    assert "Budget alerts are off" in reply and "WARDEN_BUDGETS__WEBHOOK_TOKENS" in reply
