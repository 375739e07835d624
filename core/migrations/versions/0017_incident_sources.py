"""Incident sources: which sources a subscription wants, and the XDR id that joins twins.

``subscriptions.sources`` names the sources a conversation receives incidents from
(``sentinel``, ``defender`` or both, comma-separated); existing subscriptions keep Sentinel.
``incidents.xdr_id`` is the Defender XDR incident id of an incident, so the same incident
reported by Sentinel and by Defender XDR is stored, and shown, once.

Revision ID: 0017
Revises: 0014
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add subscriptions.sources and incidents.xdr_id (indexed)."""
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(
            sa.Column("sources", sa.String(64), nullable=False, server_default="sentinel")
        )
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("xdr_id", sa.String(64)))
    op.create_index("ix_incidents_xdr_id", "incidents", ["xdr_id"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_incidents_xdr_id", table_name="incidents")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("xdr_id")
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("sources")
