"""The budget alerts tables (SQLAlchemy Core), created by migrations 0022 and 0023
(``core.store.budgets``)."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text

from core.store.schema import metadata

budget_alerts = Table(
    "budget_alerts",
    metadata,
    Column("alert_key", String(768), primary_key=True),
    Column("alert", Text, nullable=False),
    Column("conversation_id", String(512), nullable=False),
    Column("version", Integer, nullable=False),
    Column("activity_id", String(256)),
    Column("posted_version", Integer),
    Column("acknowledged_by", String(256)),
    Column("acknowledged_at", Float),
    Column("change_requested_by", String(256)),
    Column("change_number", String(64)),
    Column("change_url", String(1024)),
    Column("received_at", Float, nullable=False),
    Index("ix_budget_alerts_card", "conversation_id", "activity_id"),
)
"""One budget alert (``alert``: its JSON), the conversation its card goes to, and what was
done from the card; ``version`` grows with each change, ``posted_version`` is what the card
in Teams shows."""

budget_subscriptions = Table(
    "budget_subscriptions",
    metadata,
    Column("scope_key", String(256), primary_key=True),
    Column("conversation_id", String(512), nullable=False),
    Column("created_by", String(256)),
    Column("created_at", Float, nullable=False),
    Index("ix_budget_subscriptions_conversation", "conversation_id"),
)
"""Budget scopes subscribed from Teams (``subscribe budgets``, migration 0023): the
conversation where alerts of ``scope_key`` (``<subscription>`` or ``<subscription>/<group>``,
lower case) are posted."""
