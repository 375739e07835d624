"""Evidence reminder posts: where each reminder or escalation card sits once posted.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create evidence_reminder_posts."""
    op.create_table(
        "evidence_reminder_posts",
        sa.Column("post_key", sa.String(1024), primary_key=True),
        sa.Column("conversation_id", sa.String(512), primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("activity_id", sa.Text, nullable=False),
        sa.Column("posted_at", sa.Float, nullable=False),
    )
    op.create_index("ix_evidence_reminder_posts_request", "evidence_reminder_posts", ["request_id"])


def downgrade() -> None:
    """Drop evidence_reminder_posts."""
    op.drop_index("ix_evidence_reminder_posts_request", table_name="evidence_reminder_posts")
    op.drop_table("evidence_reminder_posts")
