"""Evidence owners' personal chats, and where each request's owner card went.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create evidence_owner_chats and evidence_owner_routes."""
    op.create_table(
        "evidence_owner_chats",
        sa.Column("person_id", sa.String(256), primary_key=True),
        sa.Column("chat_id", sa.String(512), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "evidence_owner_routes",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("home_id", sa.String(512), nullable=False),
        sa.Column("chat_id", sa.String(512)),
        sa.Column("way", sa.String(16), nullable=False),
        sa.Column("decided_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    """Drop the owner chat tables."""
    op.drop_table("evidence_owner_routes")
    op.drop_table("evidence_owner_chats")
