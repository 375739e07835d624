"""Checkpoints of pollers: where each one has read up to.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the checkpoints table."""
    op.create_table(
        "checkpoints",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    """Drop the checkpoints table."""
    op.drop_table("checkpoints")
