"""The evidence-library change tables (SQLAlchemy Core): ``delta_items`` and, created by
migration 0023, ``outside_change_alerts``.

``delta_items`` holds the eTag the watch last accounted for per item; ``outside_change_alerts``
holds every change Warden alerted on, so a change read again (a lost or
restored delta link, a resync) is never alerted on twice (``core.store.delta``).
"""

from __future__ import annotations

from sqlalchemy import Column, Float, String, Table, Text

from core.store.schema import metadata

delta_items = Table(
    "delta_items",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("item_id", String(128), primary_key=True),
    Column("etag", String(256), nullable=False),
    Column("updated_at", Float, nullable=False),
)

outside_change_alerts = Table(
    "outside_change_alerts",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("item_id", String(128), primary_key=True),
    Column("version", String(300), primary_key=True),
    Column("alerted_at", Float, nullable=False),
    Column("activity_id", Text),
    Column("posted_at", Float),
)
"""One alerted change: the watched ``source``, the SharePoint ``item_id`` and the item's
``version`` (its eTag, or ``deleted:<last eTag>`` for a removal). ``activity_id`` and
``posted_at``: the auditors' card that showed it (None until posted)."""
