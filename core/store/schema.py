"""The store's incident and delivery tables (SQLAlchemy Core), and the ``metadata`` every table
of the store belongs to. Migrations in ``core/migrations`` create them.

The other areas' tables are beside it: ``schema_links`` (ITSM records, CMDB CIs, ARM
deployments), ``schema_evidence``, ``schema_budgets``, ``schema_costs``, ``schema_delta``;
``schema_sealed.SEALED`` lists the columns encrypted at rest.

Timestamps are UNIX seconds (float, UTC): portable across SQLite and PostgreSQL and cheap to
compare. An incident's ``version`` is a string that sorts like its version order.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(512), primary_key=True),
    Column("reference", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("tenant_id", String(64)),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("conversation_id", String(512), primary_key=True),
    Column("min_severity", String(32), nullable=False),
    Column("min_rank", Integer, nullable=False),
    Column("created_by", String(128)),
    Column("created_at", Float, nullable=False),
    Column("sources", String(64), nullable=False, server_default="sentinel"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("key", String(1024), primary_key=True),
    Column("version", String(128), nullable=False),
    Column("severity", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("number", Integer),
    Column("xdr_id", String(64)),
    Index("ix_incidents_number", "number"),
    Index("ix_incidents_xdr_id", "xdr_id"),
)

posted_cards = Table(
    "posted_cards",
    metadata,
    Column("incident_key", String(1024), primary_key=True),
    Column("conversation_id", String(512), primary_key=True),
    Column("activity_id", String(256), nullable=False),
    Column("version", String(128), nullable=False),
    Column("posted_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_posted_cards_conversation", "conversation_id"),
)

webhook_receipts = Table(
    "webhook_receipts",
    metadata,
    Column("webhook_id", String(256), primary_key=True),
    Column("incident_key", String(1024), nullable=False),
    Column("incident_name", String(256), nullable=False),
    Column("received_at", Float, nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

triage_actions = Table(
    "triage_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("intent_id", String(64), nullable=False, unique=True),
    Column("incident_key", String(1024), nullable=False),
    Column("conversation_id", String(512), nullable=False),
    Column("verb", String(64), nullable=False),
    Column("change", Text, nullable=False),
    Column("actor_id", String(128), nullable=False),
    Column("actor_name", Text, nullable=False),
    Column("allowed_by", Text),  # JSON: the role grant that allowed the action (0019)
    Column("state", String(16), nullable=False),
    Column("detail", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_triage_actions_incident", "incident_key", "id"),
)

incident_comments = Table(
    "incident_comments",
    metadata,
    Column("incident_key", String(1024), primary_key=True),
    Column("comment_id", String(256), primary_key=True),
    Column("origin", String(16), nullable=False),
    Column("seen_at", Float, nullable=False),
)

admin_audit = Table(
    "admin_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(1024), nullable=False),
    Column("details", Text, nullable=False),
    Index("ix_admin_audit_at", "at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("ordering_key", String(1024), nullable=False),
    Column("conversation_id", String(512)),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_until", Float),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_outbox_due", "status", "next_attempt_at"),
    Index("ix_outbox_ordering_key", "ordering_key"),
    Index("ix_outbox_conversation", "conversation_id", "status"),
)
