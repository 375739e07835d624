"""Evidence-library change detection: the eTag Warden last saw of each watched item.

``delta_items`` holds, per watched source (``evidence``, ``requests``, ``audit``) and item,
the eTag of the item's last state Warden accounted for (written by Warden, or reported
already). A delta round compares what changed with it; after a resync (410 Gone) it tells an
untouched item from one changed while the token was lost. The delta link itself is a
checkpoint (``checkpoints``, ``graph-delta:<source>``).

Revision ID: 0021
Revises: 0017
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create delta_items."""
    op.create_table(
        "delta_items",
        sa.Column("source", sa.String(32), primary_key=True),
        sa.Column("item_id", sa.String(128), primary_key=True),
        sa.Column("etag", sa.String(256), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    """Drop delta_items."""
    op.drop_table("delta_items")
