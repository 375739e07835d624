"""Configuration items (CMDB CIs) matching an incident's entities, and the lookups asked.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create incident_cis (the CIs found per incident) and incident_ci_lookups."""
    op.create_table(
        "incident_cis",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_key", sa.String(1024), nullable=False),
        sa.Column("ci_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("env", sa.String(128)),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("last_seen_at", sa.Float, nullable=False),
        sa.Column("found_at", sa.Float, nullable=False),
    )
    op.create_index("ux_incident_cis_ci", "incident_cis", ["incident_key", "ci_id"], unique=True)
    op.create_table(
        "incident_ci_lookups",
        sa.Column("incident_key", sa.String(1024), primary_key=True),
        sa.Column("alert_count", sa.Integer, nullable=False),
        sa.Column("asked_at", sa.Float, nullable=False),
        sa.Column("looked_up_at", sa.Float),
        sa.Column("changed_at", sa.Float),
    )


def downgrade() -> None:
    """Drop incident_ci_lookups and incident_cis."""
    op.drop_table("incident_ci_lookups")
    op.drop_index("ux_incident_cis_ci", table_name="incident_cis")
    op.drop_table("incident_cis")
