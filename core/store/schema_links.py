"""What incidents are linked to (SQLAlchemy Core): ITSM records, CMDB CIs, ARM deployments and
the Azure resources they touched (``core.store.links``, ``cmdb``, ``cmdb_cis``, ``deployments``).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from core.store.schema import metadata

incident_links = Table(
    "incident_links",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_key", String(1024), nullable=False),
    Column("system", String(16), nullable=False),
    Column("external_id", String(64), nullable=False),
    Column("record_key", String(64), nullable=False),
    Column("record_type", String(32), nullable=False),
    Column("url", Text, nullable=False),
    Column("status", String(128), nullable=False),
    Column("priority", Integer),
    Column("linked_by", String(128), nullable=False),
    Column("linked_by_name", Text, nullable=False),
    Column("record_updated_at", String(32)),
    Column("active", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_incident_links_record", "system", "record_key"),
    Index("ux_incident_links_link", "incident_key", "system", "external_id", unique=True),
)

incident_cis = Table(
    "incident_cis",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_key", String(1024), nullable=False),
    Column("ci_id", String(64), nullable=False),
    Column("name", String(255), nullable=False),
    Column("type", String(128), nullable=False),
    Column("owner", Text, nullable=False),
    Column("env", String(128)),
    Column("tags", Text, nullable=False),
    Column("last_seen_at", Float, nullable=False),
    Column("found_at", Float, nullable=False),
    Index("ux_incident_cis_ci", "incident_key", "ci_id", unique=True),
)
"""The CMDB CIs matching an incident's entities (``core.store.cmdb``): the set found by the
newest lookup, replaced whole. ``owner`` is sealed ("" when the CI has none); ``tags`` is a
JSON list."""

cmdb_cis = Table(
    "cmdb_cis",
    metadata,
    Column("ci_id", String(1024), primary_key=True),
    Column("name", String(512), nullable=False),
    Column("type", String(256), nullable=False),
    Column("owner", Text, nullable=False),
    Column("env", String(256)),
    Column("tags", Text, nullable=False),
    Column("needs_tags", Boolean, nullable=False),
    Column("first_seen_at", Float, nullable=False),
    Column("last_seen_at", Float, nullable=False),
    Column("last_seen_run", Integer, nullable=False),
    Column("retired_at", Float),
    Index("ix_cmdb_cis_seen", "retired_at", "last_seen_run"),
)
"""Azure resources as CMDB CIs (``core.store.cmdb_cis``): ``owner`` sealed ("" for none),
``tags`` a sealed JSON list ("[]" for none); a CI is retired, never deleted, once runs stop
seeing it."""

arm_deployments = Table(
    "arm_deployments",
    metadata,
    Column("deployment_id", String(1024), primary_key=True),
    Column("resource_group", String(1024), nullable=False),
    Column("name", String(256), nullable=False),
    Column("name_key", String(256), nullable=False),
    Column("state", String(64), nullable=False),
    Column("timestamp", Float, nullable=False),
    Column("duration", String(64)),
    Column("correlation_id", String(64)),
    Column("error", Text),
    Column("seen_at", Float, nullable=False),
    Index("ix_arm_deployments_name", "name_key"),
    Index("ix_arm_deployments_group", "resource_group", "timestamp"),
)
"""ARM deployments Warden has read (``core.store.deployments``), by lower-case ARM id;
``name_key`` is the lower-case name a chat command finds one by."""

deployment_targets = Table(
    "deployment_targets",
    metadata,
    Column("deployment_id", String(1024), primary_key=True),
    Column("resource_id", String(1024), primary_key=True),
    Index("ix_deployment_targets_resource", "resource_id"),
)
"""The resources (lower-case ids) each deployment touched."""

deployment_links = Table(
    "deployment_links",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment_id", String(1024), nullable=False),
    Column("change", String(64), nullable=False),
    Column("linked_by", String(128), nullable=False),
    Column("linked_by_name", Text, nullable=False),
    Column("linked_at", Float, nullable=False),
    Index("ux_deployment_links_link", "deployment_id", "change", unique=True),
)
"""Deployments linked to ITSM changes: who (Entra object id, sealed name) and when."""

incident_resources = Table(
    "incident_resources",
    metadata,
    Column("incident_key", String(1024), primary_key=True),
    Column("resource_id", String(1024), primary_key=True),
)
"""The Azure resources (lower-case ids) an incident's entities name, as last read."""

incident_resource_lookups = Table(
    "incident_resource_lookups",
    metadata,
    Column("incident_key", String(1024), primary_key=True),
    Column("first_alert_at", Float),
    Column("asked_at", Float, nullable=False),
    Column("looked_up_at", Float),
    Column("changed_at", Float),
)
"""When an incident's resources and deployments were asked for, read, and last changed
(``changed_at`` only grows: the card's version moves with it)."""

incident_ci_lookups = Table(
    "incident_ci_lookups",
    metadata,
    Column("incident_key", String(1024), primary_key=True),
    Column("alert_count", Integer, nullable=False),
    Column("asked_at", Float, nullable=False),
    Column("looked_up_at", Float),
    Column("changed_at", Float),
)
"""One row per incident whose CIs were asked for: the alert count the newest lookup was asked
for (a lookup is asked again when it differs), when a lookup last stored a set, and when the
set last changed (the card's version grows with it, an empty set included)."""
