"""Card posts in flight: the marker of a post whose answer is not recorded yet.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create card_sends."""
    op.create_table(
        "card_sends",
        sa.Column("incident_key", sa.String(1024), primary_key=True),
        sa.Column("conversation_id", sa.String(512), primary_key=True),
        sa.Column("marker", sa.String(64), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    """Drop card_sends."""
    op.drop_table("card_sends")
