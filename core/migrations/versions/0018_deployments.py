"""ARM deployments: those Warden has seen, what they touched, their links to changes, and the
Azure resources of each incident (with the incident's first alert).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create arm_deployments, deployment_targets, deployment_links, incident_resources and
    incident_resource_lookups."""
    op.create_table(
        "arm_deployments",
        sa.Column("deployment_id", sa.String(1024), primary_key=True),
        sa.Column("resource_group", sa.String(1024), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("name_key", sa.String(256), nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("timestamp", sa.Float, nullable=False),
        sa.Column("duration", sa.String(64)),
        sa.Column("correlation_id", sa.String(64)),
        sa.Column("error", sa.Text),
        sa.Column("seen_at", sa.Float, nullable=False),
    )
    op.create_index("ix_arm_deployments_name", "arm_deployments", ["name_key"])
    op.create_index("ix_arm_deployments_group", "arm_deployments", ["resource_group", "timestamp"])
    op.create_table(
        "deployment_targets",
        sa.Column("deployment_id", sa.String(1024), primary_key=True),
        sa.Column("resource_id", sa.String(1024), primary_key=True),
    )
    op.create_index("ix_deployment_targets_resource", "deployment_targets", ["resource_id"])
    op.create_table(
        "deployment_links",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.String(1024), nullable=False),
        sa.Column("change", sa.String(64), nullable=False),
        sa.Column("linked_by", sa.String(128), nullable=False),
        sa.Column("linked_by_name", sa.Text, nullable=False),
        sa.Column("linked_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ux_deployment_links_link", "deployment_links", ["deployment_id", "change"], unique=True
    )
    op.create_table(
        "incident_resources",
        sa.Column("incident_key", sa.String(1024), primary_key=True),
        sa.Column("resource_id", sa.String(1024), primary_key=True),
    )
    op.create_table(
        "incident_resource_lookups",
        sa.Column("incident_key", sa.String(1024), primary_key=True),
        sa.Column("first_alert_at", sa.Float),
        sa.Column("asked_at", sa.Float, nullable=False),
        sa.Column("looked_up_at", sa.Float),
        sa.Column("changed_at", sa.Float),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("incident_resource_lookups")
    op.drop_table("incident_resources")
    op.drop_index("ux_deployment_links_link", table_name="deployment_links")
    op.drop_table("deployment_links")
    op.drop_index("ix_deployment_targets_resource", table_name="deployment_targets")
    op.drop_table("deployment_targets")
    op.drop_index("ix_arm_deployments_group", table_name="arm_deployments")
    op.drop_index("ix_arm_deployments_name", table_name="arm_deployments")
    op.drop_table("arm_deployments")
