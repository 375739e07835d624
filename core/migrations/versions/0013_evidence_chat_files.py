"""Evidence files attached in a Teams chat: their download URL until they are filed.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create evidence_chat_files."""
    op.create_table(
        "evidence_chat_files",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("conversation_id", sa.String(512), nullable=False),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("download_url", sa.Text, nullable=False),
        sa.Column("unique_id", sa.String(256)),
        sa.Column("file_type", sa.String(32)),
        sa.Column("file_size", sa.BigInteger),
        sa.Column("request_id", sa.String(64)),
        sa.Column("version", sa.Integer),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_evidence_chat_files_submission", "evidence_chat_files", ["request_id", "version"]
    )


def downgrade() -> None:
    """Drop evidence_chat_files."""
    op.drop_table("evidence_chat_files")
