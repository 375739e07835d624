"""``subscribe budgets <scope>`` and ``unsubscribe budgets <scope>``: where budget alerts go.

The scope is a subscription id or a resource group's ARM path
(``/subscriptions/<id>/resourceGroups/<group>``); anything else gets an error card saying
what a scope looks like. The conversation itself was stored from the command's activity (as
for ``subscribe incidents``), so the card job can reach it later.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.types import Card, Message
from cards.budget import budget_subscribed_card, budget_unsubscribed_card
from cards.common import error_card
from core.budgets import scope_key
from core.store import budget_subscriptions
from core.store.store import Store

BUDGET_COMMANDS = frozenset({"subscribe budgets", "unsubscribe budgets"})
"""The command names this module answers."""

BUDGETS_OFF = (
    "Warden takes no budget alerts here: an operator sets WARDEN_BUDGETS__WEBHOOK_TOKENS "
    "and WARDEN_BUDGETS__OPERATORS_CHANNEL first."
)


async def budget_command(
    store: Store, message: Message, name: str, values: Mapping[str, str], *, enabled: bool
) -> Card:
    """Run ``subscribe budgets`` or ``unsubscribe budgets`` for the message's conversation."""
    if not enabled:
        return error_card("Budget alerts are off", BUDGETS_OFF)
    try:
        key = scope_key(values.get("scope", ""))
    except ValueError as exc:
        return error_card("That scope needs another look", str(exc))
    conversation = message.conversation.conversation_id
    actor = message.user.aad_object_id or message.user.id or "unknown"
    if name == "subscribe budgets":
        moved = await budget_subscriptions.subscribe(store, key, conversation, by=actor)
        return budget_subscribed_card(key, moved)
    had = await budget_subscriptions.unsubscribe(store, key, conversation, by=actor)
    return budget_unsubscribed_card(key, had)
