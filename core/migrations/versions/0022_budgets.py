"""Azure budget alerts: one row per alert (budget, scope, period, threshold) and its card.

Revision ID: 0022
Revises: 0020
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create budget_alerts."""
    op.create_table(
        "budget_alerts",
        sa.Column("alert_key", sa.String(768), primary_key=True),
        sa.Column("alert", sa.Text, nullable=False),
        sa.Column("conversation_id", sa.String(512), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("activity_id", sa.String(256)),
        sa.Column("posted_version", sa.Integer),
        sa.Column("acknowledged_by", sa.String(256)),
        sa.Column("acknowledged_at", sa.Float),
        sa.Column("change_requested_by", sa.String(256)),
        sa.Column("change_number", sa.String(64)),
        sa.Column("change_url", sa.String(1024)),
        sa.Column("received_at", sa.Float, nullable=False),
    )
    op.create_index("ix_budget_alerts_card", "budget_alerts", ["conversation_id", "activity_id"])


def downgrade() -> None:
    """Drop budget_alerts."""
    op.drop_index("ix_budget_alerts_card", table_name="budget_alerts")
    op.drop_table("budget_alerts")
