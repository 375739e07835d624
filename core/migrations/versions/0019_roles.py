"""Roles: the grant that allowed each triage action.

``triage_actions.allowed_by`` holds, as JSON, the Warden role and its source (an Entra
group, an app role, or none needed) that let the person act, so "who was allowed to do
this, and why" can be answered later. Actions recorded before have none.

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add triage_actions.allowed_by (nullable JSON text)."""
    with op.batch_alter_table("triage_actions") as batch:
        batch.add_column(sa.Column("allowed_by", sa.Text()))


def downgrade() -> None:
    """Drop it."""
    with op.batch_alter_table("triage_actions") as batch:
        batch.drop_column("allowed_by")
