"""Incident comments Warden knows: written by Warden, or relayed to the cards' threads.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the incident_comments table."""
    op.create_table(
        "incident_comments",
        sa.Column("incident_key", sa.String(1024), primary_key=True),
        sa.Column("comment_id", sa.String(256), primary_key=True),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("seen_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    """Drop the incident_comments table."""
    op.drop_table("incident_comments")
