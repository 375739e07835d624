"""The CMDB inventory: Azure resources synced from Resource Graph as configuration items.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create cmdb_cis (the sync's checkpoint lives in checkpoints, as ``cmdb.sync``)."""
    op.create_table(
        "cmdb_cis",
        sa.Column("ci_id", sa.String(1024), primary_key=True),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("type", sa.String(256), nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("env", sa.String(256)),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("needs_tags", sa.Boolean, nullable=False),
        sa.Column("first_seen_at", sa.Float, nullable=False),
        sa.Column("last_seen_at", sa.Float, nullable=False),
        sa.Column("last_seen_run", sa.Integer, nullable=False),
        sa.Column("retired_at", sa.Float),
    )
    op.create_index("ix_cmdb_cis_seen", "cmdb_cis", ["retired_at", "last_seen_run"])


def downgrade() -> None:
    """Drop cmdb_cis."""
    op.drop_index("ix_cmdb_cis_seen", table_name="cmdb_cis")
    op.drop_table("cmdb_cis")
