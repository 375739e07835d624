"""Budget scopes subscribed from Teams, and the evidence changes Warden alerted on.

``budget_subscriptions``: ``subscribe budgets <scope>`` stores a row; the budget webhook
routes with these rows and the settings' map (``WARDEN_BUDGETS__CHANNELS``), a row winning
over the map for one scope. ``outside_change_alerts``: one row per change to an evidence
record that Warden alerted on (source, item, version), so it is never alerted on twice.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create budget_subscriptions and outside_change_alerts."""
    op.create_table(
        "budget_subscriptions",
        sa.Column("scope_key", sa.String(256), primary_key=True),
        sa.Column("conversation_id", sa.String(512), nullable=False),
        sa.Column("created_by", sa.String(256)),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_budget_subscriptions_conversation", "budget_subscriptions", ["conversation_id"]
    )
    op.create_table(
        "outside_change_alerts",
        sa.Column("source", sa.String(32), primary_key=True),
        sa.Column("item_id", sa.String(128), primary_key=True),
        sa.Column("version", sa.String(300), primary_key=True),
        sa.Column("alerted_at", sa.Float, nullable=False),
        sa.Column("activity_id", sa.Text),
        sa.Column("posted_at", sa.Float),
    )


def downgrade() -> None:
    """Drop outside_change_alerts and budget_subscriptions."""
    op.drop_table("outside_change_alerts")
    op.drop_index("ix_budget_subscriptions_conversation", table_name="budget_subscriptions")
    op.drop_table("budget_subscriptions")
