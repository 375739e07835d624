"""Cost Management exports: the runs and partitions ingested, and cost per resource per day.

Revision ID: 0020
Revises: 0017
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create cost_export_runs, cost_export_blobs (the per-blob checkpoint) and cost_daily."""
    op.create_table(
        "cost_export_runs",
        sa.Column("run_key", sa.String(1024), primary_key=True),
        sa.Column("export_key", sa.String(1024), nullable=False),
        sa.Column("run_id", sa.String(256), nullable=False),
        sa.Column("period_start", sa.String(10), nullable=False),
        sa.Column("period_end", sa.String(10), nullable=False),
        sa.Column("submitted_at", sa.Float, nullable=False),
        sa.Column("blobs", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("completed_at", sa.Float),
    )
    op.create_index("ix_cost_export_runs_export", "cost_export_runs", ["export_key"])
    op.create_table(
        "cost_export_blobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(1024), nullable=False, unique=True),
        sa.Column("run_key", sa.String(1024), nullable=False),
        sa.Column("etag", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_cost_export_blobs_run", "cost_export_blobs", ["run_key", "status"])
    op.create_table(
        "cost_daily",
        sa.Column("blob_id", sa.Integer, primary_key=True),
        sa.Column("resource_id", sa.String(1024), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("cost", sa.Float, nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("subscription_id", sa.String(64), nullable=False),
        sa.Column("resource_group", sa.String(256), nullable=False),
    )
    op.create_index("ix_cost_daily_resource", "cost_daily", ["resource_id", "day"])
    op.create_index("ix_cost_daily_scope", "cost_daily", ["subscription_id", "day"])


def downgrade() -> None:
    """Drop the cost tables."""
    op.drop_index("ix_cost_daily_scope", table_name="cost_daily")
    op.drop_index("ix_cost_daily_resource", table_name="cost_daily")
    op.drop_table("cost_daily")
    op.drop_index("ix_cost_export_blobs_run", table_name="cost_export_blobs")
    op.drop_table("cost_export_blobs")
    op.drop_index("ix_cost_export_runs_export", table_name="cost_export_runs")
    op.drop_table("cost_export_runs")
