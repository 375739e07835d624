"""Budget alerts' part of the composition: the webhook, the card buttons and the two jobs
(``budget.card`` over the Teams adapter, ``budget.change`` over the connected ITSM system)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from bot.budgets import BudgetCardDelivery, BudgetChangeDelivery, BudgetDesk
from bot.delivery import CardSender
from connectors.budgets.mapping import budget_alert
from core.itsm import ItsmConnector
from core.settings import Settings
from core.store.budgets import BUDGET_CARD_JOB, BUDGET_CHANGE_JOB
from core.store.store import Store
from core.worker import Handler
from web.budget_webhook import BudgetWebhook

WEBHOOK_PATH = "/api/webhooks/budgets"


def desk(settings: Settings, store: Store, itsm: ItsmConnector | None) -> BudgetDesk | None:
    """The budget cards' buttons; None while the budget webhook is off."""
    if not settings.budgets.enabled:
        return None
    return BudgetDesk(store, itsm=itsm is not None)


def handlers(
    settings: Settings, store: Store, sender: CardSender, itsm: ItsmConnector | None
) -> dict[str, Handler]:
    """The budget jobs' handlers (none while the webhook is off; no change job without ITSM)."""
    if not settings.budgets.enabled:
        return {}
    found: dict[str, Handler] = {
        BUDGET_CARD_JOB: BudgetCardDelivery(store, sender, itsm=itsm is not None)
    }
    if itsm is not None:
        found[BUDGET_CHANGE_JOB] = BudgetChangeDelivery(store, itsm)
    return found


def route(app: web.Application, settings: Settings, store: Store, wake: Callable[[], None]) -> None:
    """Serve ``POST /api/webhooks/budgets`` when a webhook token is set."""
    budgets = settings.budgets
    if not budgets.enabled or budgets.operators_channel is None:
        return
    webhook = BudgetWebhook(
        [token.get_secret_value() for token in budgets.webhook_tokens],
        store,
        budget_alert,
        channels=budgets.channels,
        operators_channel=budgets.operators_channel,
        max_bytes=settings.webhook_max_bytes,
        on_change=wake,
    )
    app.router.add_post(WEBHOOK_PATH, webhook.handle)
