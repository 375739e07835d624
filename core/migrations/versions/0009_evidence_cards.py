"""Evidence cards in Teams: where each request's owner and reviewers' cards sit, and names.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create evidence_cards and evidence_people."""
    op.create_table(
        "evidence_cards",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), primary_key=True),
        sa.Column("conversation_id", sa.String(512), primary_key=True),
        sa.Column("activity_id", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("posted_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_evidence_cards_conversation", "evidence_cards", ["conversation_id", "request_id"]
    )
    op.create_table(
        "evidence_people",
        sa.Column("person_id", sa.String(256), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    """Drop evidence_people and evidence_cards."""
    op.drop_table("evidence_people")
    op.drop_index("ix_evidence_cards_conversation", table_name="evidence_cards")
    op.drop_table("evidence_cards")
