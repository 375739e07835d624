"""Evidence campaigns: named collections of requests for a period, and the requests they hold.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create evidence_campaigns and evidence_campaign_requests."""
    op.create_table(
        "evidence_campaigns",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("due", sa.String(10)),
        sa.Column("requirements", sa.Text, nullable=False),
        sa.Column("started_by", sa.String(256), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
    )
    op.create_table(
        "evidence_campaign_requests",
        sa.Column("campaign", sa.String(200), primary_key=True),
        sa.Column("requirement_id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False),
    )
    op.create_index(
        "ix_evidence_campaign_requests_request", "evidence_campaign_requests", ["request_id"]
    )


def downgrade() -> None:
    """Drop the campaign tables."""
    op.drop_table("evidence_campaign_requests")
    op.drop_table("evidence_campaigns")
