"""Conversations, subscriptions, incidents, posted cards, webhook receipts and the outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the foundation's tables."""
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(512), primary_key=True),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "subscriptions",
        sa.Column("conversation_id", sa.String(512), primary_key=True),
        sa.Column("min_severity", sa.String(32), nullable=False),
        sa.Column("min_rank", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(128)),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "incidents",
        sa.Column("key", sa.String(1024), primary_key=True),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("severity", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "posted_cards",
        sa.Column("incident_key", sa.String(1024), primary_key=True),
        sa.Column("conversation_id", sa.String(512), primary_key=True),
        sa.Column("activity_id", sa.String(256), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("posted_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_posted_cards_conversation", "posted_cards", ["conversation_id"])
    op.create_table(
        "webhook_receipts",
        sa.Column("webhook_id", sa.String(256), primary_key=True),
        sa.Column("incident_key", sa.String(1024), nullable=False),
        sa.Column("incident_name", sa.String(256), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
    )
    _create_outbox()


def _create_outbox() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("ordering_key", sa.String(1024), nullable=False),
        sa.Column("conversation_id", sa.String(512)),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("lease_until", sa.Float),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_ordering_key", "outbox", ["ordering_key"])
    op.create_index("ix_outbox_conversation", "outbox", ["conversation_id", "status"])


def downgrade() -> None:
    """Drop the foundation's tables."""
    for table in ("outbox", "webhook_receipts", "posted_cards", "incidents"):
        op.drop_table(table)
    op.drop_table("subscriptions")
    op.drop_table("conversations")
