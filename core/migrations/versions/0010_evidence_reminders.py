"""Evidence reminders: each reminder or escalation sent, once per (request, kind, day).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create evidence_reminders; its primary key is the never-twice guarantee."""
    op.create_table(
        "evidence_reminders",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("sent_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    """Drop evidence_reminders."""
    op.drop_table("evidence_reminders")
