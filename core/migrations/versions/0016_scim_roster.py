"""The SCIM roster: people and groups provisioned by Entra ID, and group memberships.

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create roster_resources and roster_members."""
    op.create_table(
        "roster_resources",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("name_key", sa.String(512), nullable=False),
        sa.Column("unique_key", sa.String(512)),
        sa.Column("external_id", sa.String(512)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("manager_id", sa.String(64)),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ux_roster_resources_unique_key", "roster_resources", ["kind", "unique_key"], unique=True
    )
    op.create_index("ix_roster_resources_name", "roster_resources", ["kind", "name_key"])
    op.create_index("ix_roster_resources_external_id", "roster_resources", ["kind", "external_id"])
    op.create_table(
        "roster_members",
        sa.Column("group_id", sa.String(64), primary_key=True),
        sa.Column("member_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_roster_members_member", "roster_members", ["member_id"])


def downgrade() -> None:
    """Drop roster_members and roster_resources."""
    op.drop_table("roster_members")
    op.drop_table("roster_resources")
