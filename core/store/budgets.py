"""Budget alerts in the store: each alert once, its card, and what was done from the card.

An alert is stored under its key (budget, scope, period, threshold) together with the
``budget.card`` job that posts its card, in one transaction; a resend finds the key and
writes nothing. Acknowledging it, asking for a change and the change's arrival each bump
the row's ``version`` and queue a redraw, so the card in Teams catches up through the outbox.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, select, update

from core.budgets import BudgetAlert, BudgetCard
from core.store import outbox
from core.store.engine import insert_for
from core.store.schema import outbox as outbox_table
from core.store.schema_budgets import budget_alerts
from core.store.store import Store

BUDGET_CARD_JOB = "budget.card"
"""The outbox job that posts (or redraws) a budget alert's card; payload ``{"alert": key}``."""

BUDGET_CHANGE_JOB = "budget.change"
"""The outbox job that creates a budget alert's change through the connected ITSM system;
payload ``{"alert": key}``."""


@dataclass(frozen=True)
class StoredBudgetAlert:
    """A stored alert, where its card goes, what the card shows, and what Teams shows."""

    key: str
    alert: BudgetAlert
    conversation_id: str
    version: int
    card: BudgetCard
    activity_id: str | None = None
    posted_version: int | None = None


def alert_json(alert: BudgetAlert) -> str:
    """``alert`` as stored (dates in ISO 8601)."""
    return json.dumps(asdict(alert), default=lambda v: v.isoformat(), sort_keys=True)


def alert_from_json(text: str) -> BudgetAlert:
    """The alert stored as ``text`` by :func:`alert_json`."""
    values: dict[str, Any] = json.loads(text)
    values["period_start"] = date.fromisoformat(values["period_start"])
    values["fired_at"] = datetime.fromisoformat(values["fired_at"])
    return BudgetAlert(**values)


def _card_job(store: Store, key: str, conversation_id: str) -> dict[str, Any]:
    return outbox.job_row(
        BUDGET_CARD_JOB,
        f"budget-card|{key}",
        {"alert": key},
        cipher=store.cipher,
        conversation_id=conversation_id,
    )


async def record_alert(store: Store, alert: BudgetAlert, conversation_id: str) -> bool:
    """Store ``alert`` and queue its card; False (and nothing written) for a resend."""
    key = alert.key
    row = {
        "alert_key": key,
        "alert": alert_json(alert),
        "conversation_id": conversation_id,
        "version": 1,
        "received_at": time.time(),
    }
    job = _card_job(store, key, conversation_id)

    def write(conn: Connection, _: None) -> bool:
        stmt: Any = insert_for(store.dialect, budget_alerts).values(**row)
        inserted = conn.execute(stmt.on_conflict_do_nothing(index_elements=["alert_key"]))
        if inserted.rowcount != 1:
            return False
        conn.execute(outbox_table.insert(), [job])
        return True

    return await store.run_write(write, None)


async def stored(store: Store, key: str) -> StoredBudgetAlert | None:
    """The alert stored under ``key``, or None."""
    stmt = select(budget_alerts).where(budget_alerts.c.alert_key == key)
    async with store.reading() as conn:
        row = (await conn.execute(stmt)).first()
    return None if row is None else _stored(row)


async def at_card(store: Store, conversation_id: str, activity_id: str) -> StoredBudgetAlert | None:
    """The alert whose card is message ``activity_id`` in ``conversation_id``, or None."""
    stmt = select(budget_alerts).where(
        budget_alerts.c.conversation_id == conversation_id,
        budget_alerts.c.activity_id == activity_id,
    )
    async with store.reading() as conn:
        row = (await conn.execute(stmt)).first()
    return None if row is None else _stored(row)


def _stored(row: Any) -> StoredBudgetAlert:
    card = BudgetCard(
        acknowledged_by=row.acknowledged_by,
        change_number=row.change_number,
        change_url=row.change_url,
        change_requested=row.change_requested_by is not None,
    )
    return StoredBudgetAlert(
        key=row.alert_key,
        alert=alert_from_json(row.alert),
        conversation_id=row.conversation_id,
        version=row.version,
        card=card,
        activity_id=row.activity_id,
        posted_version=row.posted_version,
    )


async def record_posted(store: Store, key: str, activity_id: str, version: int) -> None:
    """Remember that the card at ``activity_id`` shows ``version`` of the alert."""
    stmt = (
        update(budget_alerts)
        .where(budget_alerts.c.alert_key == key)
        .values(activity_id=activity_id, posted_version=version)
    )
    async with store.writing() as conn:
        await conn.execute(stmt)


async def acknowledge(store: Store, key: str, by: str) -> bool:
    """Record who acknowledged the alert and queue its redraw; False when acknowledged
    already (the first acknowledgement stands)."""
    values = {"acknowledged_by": by, "acknowledged_at": time.time()}
    return await _change(store, key, budget_alerts.c.acknowledged_by.is_(None), values, None)


async def request_change(store: Store, key: str, by: str) -> bool:
    """Queue the creation of the alert's change and a redraw; False when one was asked for."""
    job = outbox.job_row(
        BUDGET_CHANGE_JOB, f"budget-change|{key}", {"alert": key}, cipher=store.cipher
    )
    values = {"change_requested_by": by}
    return await _change(store, key, budget_alerts.c.change_requested_by.is_(None), values, job)


async def record_change(store: Store, key: str, number: str, url: str) -> bool:
    """The alert's change exists as ``number`` (at ``url``): show it on the card."""
    values = {"change_number": number, "change_url": url}
    return await _change(store, key, budget_alerts.c.change_number.is_(None), values, None)


async def _change(
    store: Store, key: str, unset: Any, values: dict[str, Any], job: dict[str, Any] | None
) -> bool:
    """Apply ``values`` where ``unset`` holds, bump the version and queue the redraw (and
    ``job``) in the same transaction; False when nothing changed."""

    def write(conn: Connection, _: None) -> bool:
        row = conn.execute(
            select(budget_alerts.c.conversation_id).where(budget_alerts.c.alert_key == key)
        ).first()
        if row is None:
            return False
        done = conn.execute(
            update(budget_alerts)
            .where(budget_alerts.c.alert_key == key, unset)
            .values(version=budget_alerts.c.version + 1, **values)
        )
        if done.rowcount != 1:
            return False
        jobs = [_card_job(store, key, row.conversation_id), *([job] if job else [])]
        conn.execute(outbox_table.insert(), jobs)
        return True

    return await store.run_write(write, None)
