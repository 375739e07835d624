"""Budget alerts in Teams: post and redraw their cards, answer their buttons, open changes.

``budget.card`` jobs post an alert's card once and then update it in place whenever the
stored alert moved past what the card shows. *Acknowledge* records who clicked and answers
with the redrawn card; *Open change* queues a ``budget.change`` job (no ITSM write sits in a
click), which creates the change through the connected ITSM system with a correlation id
(so a retried job finds the change it made) and redraws the card with its link.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from bot.delivery import CardSender
from bot.types import Card, CardAction
from cards.budget import TOP_RESOURCES, budget_card
from cards.common import error_card
from core.errors import DeliveryError, Outcome
from core.itsm import ChangeDraft, ItsmConnector
from core.store import budgets as budgets_store
from core.store import cost_queries
from core.store.budgets import StoredBudgetAlert
from core.store.outbox import Job
from core.store.store import Store

log = logging.getLogger(__name__)

NOT_HERE = "This conversation has no card for that budget alert."


async def draw(store: Store, stored: StoredBudgetAlert, *, itsm: bool) -> Card:
    """The card of ``stored`` now, with the top resources of its scope this budget period."""
    alert = stored.alert
    top = await cost_queries.top_resources(
        store,
        alert.subscription_id,
        alert.period_start,
        max(alert.fired_at.date(), alert.period_start),
        resource_group=alert.resource_group,
        limit=TOP_RESOURCES,
    )
    return budget_card(alert, stored.key, stored.card, top, itsm=itsm)


class BudgetCardDelivery:
    """Runs ``budget.card`` jobs: post the card once, then update it to the stored alert."""

    def __init__(self, store: Store, sender: CardSender, *, itsm: bool = False) -> None:
        self._store = store
        self._sender = sender
        self._itsm = itsm

    async def __call__(self, job: Job) -> None:
        """Bring the job's alert card up to the stored alert."""
        stored = await budgets_store.stored(self._store, str(job.payload.get("alert")))
        if stored is None:
            raise DeliveryError("budget alert no longer stored", outcome=Outcome.FAIL)
        conversation = await self._store.conversation(stored.conversation_id)
        if conversation is None:
            raise DeliveryError(
                "Warden is not installed in the budget alert's channel", outcome=Outcome.FAIL
            )
        if not conversation.active:
            log.info("outbox job %s skipped: the bot left the conversation", job.id)
            return
        if stored.posted_version is not None and stored.posted_version >= stored.version:
            return
        card = await draw(self._store, stored, itsm=self._itsm)
        if stored.activity_id is None:
            activity_id = await self._sender.post_card(conversation.ref, card)
        else:
            activity_id = stored.activity_id
            await self._sender.update_card(conversation.ref, activity_id, card)
        await budgets_store.record_posted(self._store, stored.key, activity_id, stored.version)


def change_correlation(key: str) -> str:
    """The ITSM correlation id of a budget alert's change (stable for the alert)."""
    return "warden-budget-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def change_draft(stored: StoredBudgetAlert) -> ChangeDraft:
    """The change Warden opens for a budget alert."""
    alert = stored.alert
    title = f"Budget {alert.budget_name} crossed {alert.threshold_percent}%"
    spent = f"{alert.spent:,.2f} of {alert.budget:,.2f} {alert.unit}".strip()
    return ChangeDraft(
        correlation_id=change_correlation(stored.key),
        short_description=title[:160],
        description=f"Scope {alert.scope}: spent {spent} since {alert.period_start}.",
        correlation_display="Warden budget alert",
    )


class BudgetChangeDelivery:
    """Runs ``budget.change`` jobs: create the alert's change, show it on the card."""

    def __init__(self, store: Store, itsm: ItsmConnector) -> None:
        self._store = store
        self._itsm = itsm

    async def __call__(self, job: Job) -> None:
        """Create (or find, by correlation id) the change and record it with the alert."""
        stored = await budgets_store.stored(self._store, str(job.payload.get("alert")))
        if stored is None:
            raise DeliveryError("budget alert no longer stored", outcome=Outcome.FAIL)
        if stored.card.change_number:
            return
        record = await self._itsm.create_change(change_draft(stored))
        await budgets_store.record_change(self._store, stored.key, record.number, record.url)


class BudgetDesk:
    """Answers the buttons of budget alert cards."""

    def __init__(self, store: Store, *, itsm: bool) -> None:
        self._store = store
        self._itsm = itsm
        self.wake: Callable[[], None] = lambda: None
        """Wakes the outbox worker (set once the worker exists)."""

    async def handle(self, action: CardAction, alert_key: str, *, change: bool) -> Card:
        """*Acknowledge* (``change`` False) or *Open change*: record it, answer the card."""
        stored = await budgets_store.stored(self._store, alert_key)
        if stored is None or stored.conversation_id != action.conversation.conversation_id:
            return error_card("Not available here", NOT_HERE)
        who = action.user.name or action.user.aad_object_id or action.user.id
        if change and not self._itsm:
            return error_card("No ITSM system connected", "Warden cannot open a change now.")
        record = budgets_store.request_change if change else budgets_store.acknowledge
        if await record(self._store, alert_key, who):
            self.wake()
        now = await budgets_store.stored(self._store, alert_key) or stored
        card = await draw(self._store, now, itsm=self._itsm)
        if action.activity_id and action.activity_id == now.activity_id:  # the answer redraws it
            await budgets_store.record_posted(self._store, now.key, action.activity_id, now.version)
        return card
