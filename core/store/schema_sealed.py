"""The store's columns encrypted at rest, across every area's tables."""

from __future__ import annotations

from core.store.schema import conversations, incidents, outbox, triage_actions
from core.store.schema_evidence import (
    audit_entries,
    evidence_chat_files,
    evidence_decisions,
    evidence_submissions,
)
from core.store.schema_links import cmdb_cis, deployment_links, incident_cis, incident_links

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
