"""Triage actions: what a responder asked of an incident from its card, and how it went.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the triage_actions table."""
    op.create_table(
        "triage_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("intent_id", sa.String(64), nullable=False, unique=True),
        sa.Column("incident_key", sa.String(1024), nullable=False),
        sa.Column("conversation_id", sa.String(512), nullable=False),
        sa.Column("verb", sa.String(64), nullable=False),
        sa.Column("change", sa.Text, nullable=False),
        sa.Column("actor_id", sa.String(128), nullable=False),
        sa.Column("actor_name", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_triage_actions_incident", "triage_actions", ["incident_key", "id"])


def downgrade() -> None:
    """Drop the triage_actions table."""
    op.drop_index("ix_triage_actions_incident", table_name="triage_actions")
    op.drop_table("triage_actions")
