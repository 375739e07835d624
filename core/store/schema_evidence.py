"""The evidence tables (SQLAlchemy Core): requests, submissions, decisions, the audit chain, the
requests' cards, chat files, owners, reminders and campaigns (``core.store.evidence*``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from core.store.schema import metadata

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

evidence_reminder_posts = Table(
    "evidence_reminder_posts",
    metadata,
    Column("post_key", String(1024), primary_key=True),
    Column("conversation_id", String(512), primary_key=True),
    Column("request_id", String(64), nullable=False),
    Column("activity_id", Text, nullable=False),
    Column("posted_at", Float, nullable=False),
    Index("ix_evidence_reminder_posts_request", "request_id"),
)
"""Each reminder or escalation card posted: its post's key (``bot.evidence_reminders``),
conversation and activity id."""
