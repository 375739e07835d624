"""Incident links to ITSM records (ServiceNow), and incidents findable by their number.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create incident_links; add incidents.number (filled as versions arrive)."""
    op.create_table(
        "incident_links",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_key", sa.String(1024), nullable=False),
        sa.Column("system", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(64), nullable=False),
        sa.Column("record_key", sa.String(64), nullable=False),
        sa.Column("record_type", sa.String(32), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("status", sa.String(128), nullable=False),
        sa.Column("priority", sa.Integer),
        sa.Column("linked_by", sa.String(128), nullable=False),
        sa.Column("linked_by_name", sa.Text, nullable=False),
        sa.Column("record_updated_at", sa.String(32)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_incident_links_record", "incident_links", ["system", "record_key"])
    op.create_index(
        "ux_incident_links_link",
        "incident_links",
        ["incident_key", "system", "external_id"],
        unique=True,
    )
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("number", sa.Integer))
    op.create_index("ix_incidents_number", "incidents", ["number"])


def downgrade() -> None:
    """Drop incident_links and incidents.number."""
    op.drop_index("ix_incidents_number", table_name="incidents")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("number")
    op.drop_index("ux_incident_links_link", table_name="incident_links")
    op.drop_index("ix_incident_links_record", table_name="incident_links")
    op.drop_table("incident_links")
