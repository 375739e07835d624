"""Evidence requests, their submissions and decisions, and the evidence audit chain.

``evidence_requests.open_key`` is set only while a request is not final; its unique index
(NULLs never collide, on SQLite and PostgreSQL alike) keeps one open request per key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create evidence_requests, evidence_submissions, evidence_decisions, audit_entries."""
    op.create_table(
        "evidence_requests",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("requirement_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(1024), nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("requested_by", sa.String(256), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("due", sa.String(10), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("approvals_needed", sa.Integer, nullable=False),
        sa.Column("resources", sa.Text, nullable=False),
        sa.Column("submission", sa.Integer, nullable=False),
        sa.Column("submitted_by", sa.String(256)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_by", sa.String(256), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("open_key", sa.String(1400)),
    )
    op.create_index("ux_evidence_requests_open_key", "evidence_requests", ["open_key"], unique=True)
    op.create_index(
        "ix_evidence_requests_requirement", "evidence_requests", ["requirement_id", "period"]
    )
    op.create_index("ix_evidence_requests_status", "evidence_requests", ["status", "due"])
    op.create_table(
        "evidence_submissions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("sha256", sa.String(64)),
        sa.Column("file_name", sa.Text),
        sa.Column("file_size", sa.BigInteger),
        sa.Column("item_id", sa.String(256)),
        sa.Column("web_url", sa.Text),
        sa.Column("submitted_by", sa.String(256), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index(
        "ux_evidence_submissions_version",
        "evidence_submissions",
        ["request_id", "version"],
        unique=True,
    )
    op.create_table(
        "evidence_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("submission", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("by", sa.String(256), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_evidence_decisions_request", "evidence_decisions", ["request_id", "id"])
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("mirrored_at", sa.Float),
        sa.Column("item_id", sa.String(256)),
    )
    op.create_index("ix_audit_entries_request", "audit_entries", ["request_id", "seq"])


def downgrade() -> None:
    """Drop the evidence tables and the audit chain."""
    op.drop_index("ix_audit_entries_request", table_name="audit_entries")
    op.drop_table("audit_entries")
    op.drop_index("ix_evidence_decisions_request", table_name="evidence_decisions")
    op.drop_table("evidence_decisions")
    op.drop_index("ux_evidence_submissions_version", table_name="evidence_submissions")
    op.drop_table("evidence_submissions")
    for index in (
        "ix_evidence_requests_status",
        "ix_evidence_requests_requirement",
        "ux_evidence_requests_open_key",
    ):
        op.drop_index(index, table_name="evidence_requests")
    op.drop_table("evidence_requests")
