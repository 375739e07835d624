"""The store's tables (SQLAlchemy Core). Migrations in ``core/migrations`` create them.

Timestamps are UNIX seconds (float, UTC): portable across SQLite and PostgreSQL and cheap to
compare. An incident's ``version`` is a string that sorts like its version order. The columns
in ``SEALED`` are encrypted at rest.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
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

evidence_requests = Table(
    "evidence_requests",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("requirement_id", String(64), nullable=False),
    Column("scope", String(1024), nullable=False),
    Column("period", String(32), nullable=False),
    Column("owner", String(256), nullable=False),
    Column("requested_by", String(256), nullable=False),
    Column("source", String(16), nullable=False),
    Column("due", String(10), nullable=False),
    Column("status", String(24), nullable=False),
    Column("approvals_needed", Integer, nullable=False),
    Column("resources", Text, nullable=False),
    Column("submission", Integer, nullable=False),
    Column("submitted_by", String(256)),
    Column("version", Integer, nullable=False),
    Column("updated_by", String(256), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("open_key", String(1400)),
    Index("ux_evidence_requests_open_key", "open_key", unique=True),
    Index("ix_evidence_requests_requirement", "requirement_id", "period"),
    Index("ix_evidence_requests_status", "status", "due"),
)
"""``open_key`` holds the request's dedupe key while it is not final and NULL after: the
unique index (NULLs never collide, on SQLite and PostgreSQL alike) keeps one open request
per key. ``due`` is an ISO date; ``resources`` a JSON list."""

evidence_submissions = Table(
    "evidence_submissions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("url", Text),
    Column("sha256", String(64)),
    Column("file_name", Text),
    Column("file_size", BigInteger),
    Column("item_id", String(256)),
    Column("web_url", Text),
    Column("submitted_by", String(256), nullable=False),
    Column("at", Float, nullable=False),
    Index("ux_evidence_submissions_version", "request_id", "version", unique=True),
)

evidence_decisions = Table(
    "evidence_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("submission", Integer, nullable=False),
    Column("kind", String(24), nullable=False),
    Column("comment", Text, nullable=False),
    Column("by", String(256), nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_evidence_decisions_request", "request_id", "id"),
)

audit_entries = Table(
    "audit_entries",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Column("body", Text, nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("mirrored_at", Float),
    Column("item_id", String(256)),
    Index("ix_audit_entries_request", "request_id", "seq"),
)
"""The evidence audit chain (``core.audit_chain``): ``body`` is the entry's JSON (sealed);
``seq``, ``prev_hash`` and ``hash`` stay in the clear so the chain can be walked. An entry is
never updated, except ``mirrored_at``/``item_id`` once it reached SharePoint's Audit Log."""

evidence_cards = Table(
    "evidence_cards",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("role", String(16), primary_key=True),
    Column("conversation_id", String(512), primary_key=True),
    Column("activity_id", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    Column("posted_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_evidence_cards_conversation", "conversation_id", "request_id"),
)
"""Where an evidence request's card for a role (``owner``, ``reviewers``) sits in a
conversation, and the request ``version`` it shows (``core.store.evidence_cards``)."""

evidence_chat_files = Table(
    "evidence_chat_files",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", String(256), nullable=False),
    Column("conversation_id", String(512), nullable=False),
    Column("file_name", Text, nullable=False),
    Column("download_url", Text, nullable=False),
    Column("unique_id", String(256)),
    Column("file_type", String(32)),
    Column("file_size", BigInteger),
    Column("request_id", String(64)),
    Column("version", Integer),
    Column("state", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_evidence_chat_files_submission", "request_id", "version"),
)
"""Files attached in a Teams chat as evidence: the download URL Teams gave (sealed), waiting
for the owner to pick a request, then the submission it became (``core.store.chat_files``)."""

evidence_people = Table(
    "evidence_people",
    metadata,
    Column("person_id", String(256), primary_key=True),
    Column("name", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)
"""The display name last seen for a person id (Entra object id or UPN) on evidence cards."""

evidence_owner_chats = Table(
    "evidence_owner_chats",
    metadata,
    Column("person_id", String(256), primary_key=True),
    Column("chat_id", String(512), nullable=False),
    Column("updated_at", Float, nullable=False),
)
"""The personal chat between an evidence owner (Entra object id) and Warden, once Graph
gave it (``core.store.evidence_cards``)."""

evidence_owner_routes = Table(
    "evidence_owner_routes",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("home_id", String(512), nullable=False),
    Column("chat_id", String(512)),
    Column("way", String(16), nullable=False),
    Column("decided_at", Float, nullable=False),
)
"""Where a request's owner card went: the owner's personal chat (``chat_id``), or its home
conversation (the requesting or evidence channel, ``home_id``) when that was refused."""

evidence_reminders = Table(
    "evidence_reminders",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("sent_at", Float, nullable=False),
)
"""Each evidence reminder recorded: its key (request, kind, ISO day it is for) is unique, so a
second round, a restart or another replica never sends it again
(``core.store.evidence_reminders``)."""

evidence_campaigns = Table(
    "evidence_campaigns",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("period", String(32), nullable=False),
    Column("due", String(10)),
    Column("requirements", Text, nullable=False),
    Column("started_by", String(256), nullable=False),
    Column("started_at", Float, nullable=False),
)
"""An evidence campaign (``core.store.campaigns``): ``requirements`` is a JSON list of ids,
``due`` an ISO date or NULL (each requirement's ``due_days``)."""

evidence_campaign_requests = Table(
    "evidence_campaign_requests",
    metadata,
    Column("campaign", String(200), primary_key=True),
    Column("requirement_id", String(64), primary_key=True),
    Column("request_id", String(64), nullable=False),
    Index("ix_evidence_campaign_requests_request", "request_id"),
)
"""The request a campaign holds for each of its requirements. A link table, not a column on
``evidence_requests``: a campaign's dedupe key is (requirement, period), so two campaigns of
one period share a request, and each must count it."""

SEALED = (
    incidents.c.payload,
    outbox.c.payload,
    conversations.c.reference,
    triage_actions.c.change,
    triage_actions.c.actor_name,
    incident_links.c.linked_by_name,
    incident_cis.c.owner,
    incident_cis.c.tags,
    cmdb_cis.c.owner,
    cmdb_cis.c.tags,
    deployment_links.c.linked_by_name,
    evidence_submissions.c.text,
    evidence_decisions.c.comment,
    audit_entries.c.body,
    evidence_chat_files.c.download_url,
)
"""Columns encrypted at rest: written through ``Store.cipher`` (``core.crypto``), named
``table.column`` in errors. They hold incident titles, descriptions and owners, job payloads,
conversation names, responders' names and comments, CI owners' names and tags, attestations,
reviewers' comments and the evidence audit log; keys, versions, severities, statuses and times
stay in the clear because queries need them. A new column that holds personal data
belongs here."""

delta_items = Table(
    "delta_items",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("item_id", String(128), primary_key=True),
    Column("etag", String(256), nullable=False),
    Column("updated_at", Float, nullable=False),
)
