"""The cost tables (SQLAlchemy Core), created by migration 0020; see ``core.store.costs``."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table, Text

from core.store.schema import metadata

cost_export_runs = Table(
    "cost_export_runs",
    metadata,
    Column("run_key", String(1024), primary_key=True),
    Column("export_key", String(1024), nullable=False),
    Column("run_id", String(256), nullable=False),
    Column("period_start", String(10), nullable=False),
    Column("period_end", String(10), nullable=False),
    Column("submitted_at", Float, nullable=False),
    Column("blobs", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("completed_at", Float),
    Index("ix_cost_export_runs_export", "export_key"),
)
"""One export run (a manifest): ``export_key`` is its export and period; the newest completed
run of an export key is the one whose costs count (older ones are dropped when it completes)."""

cost_export_blobs = Table(
    "cost_export_blobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(1024), nullable=False, unique=True),
    Column("run_key", String(1024), nullable=False),
    Column("etag", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("reason", Text),
    Column("updated_at", Float, nullable=False),
    Index("ix_cost_export_blobs_run", "run_key", "status"),
)
"""The checkpoint of each partition: ``running``, ``done`` (with the ETag read) or
``quarantined`` (with the reason)."""

cost_daily = Table(
    "cost_daily",
    metadata,
    Column("blob_id", Integer, primary_key=True),
    Column("resource_id", String(1024), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("cost", Float, nullable=False),
    Column("currency", String(8), nullable=False),
    Column("subscription_id", String(64), nullable=False),
    Column("resource_group", String(256), nullable=False),
    Index("ix_cost_daily_resource", "resource_id", "day"),
    Index("ix_cost_daily_scope", "subscription_id", "day"),
)
"""Cost per resource (lower-cased id) per day (``YYYY-MM-DD``), as one partition contributed
it; a partition ingested again replaces its rows."""
