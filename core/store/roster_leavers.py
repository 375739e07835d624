"""A leaver's pending evidence requests move to their manager, or else to one of their groups.

Runs inside the roster write that deactivates (or deletes) the person, so the roster and the
requests never disagree: each moved request is one version later, owned by the successor,
with a ``reassigned`` entry on the audit chain (and its SharePoint mirror job), a job to bring
its *Evidence Requests* list item up to date and a redraw of every card it has in Teams.

The successor is the person's manager (``urn:…:enterprise:2.0:User:manager``) while the
manager is active; otherwise the first of the person's groups by name, as its Entra object id
(the group's ``externalId``) or its name. A request already open for that successor under the
same dedupe key stays with the leaver (moving it would make two), and so does everything
when there is no successor; both are logged.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, func, select

from core.evidence import EvidenceRequest
from core.evidence import reassign as reassign_rule
from core.logs import SCRUBBER
from core.store import evidence_rows as convert
from core.store.evidence import list_job, select_request, update_request
from core.store.evidence_audit import FollowUp, record_transition, serialise_writes
from core.store.evidence_cards import redraw_jobs
from core.store.roster import USER, RosterRecord, groups_of, read
from core.store.schema_evidence import evidence_cards, evidence_requests
from core.store.store import Store

log = logging.getLogger(__name__)


def successor(conn: Connection, store: Store, leaver: RosterRecord) -> tuple[str, str] | None:
    """Who takes over from ``leaver``, and why (``manager`` or ``group <name>``); or None."""
    manager = read(conn, store, USER, leaver.manager_id) if leaver.manager_id else None
    if manager is not None and manager.active:
        return manager.name, "owner deprovisioned; manager"
    for group in groups_of(conn, store, leaver.id):
        return group.external_id or group.name, f"owner deprovisioned; group {group.name}"
    return None


def reassign_leaver(conn: Connection, store: Store, leaver: RosterRecord) -> list[EvidenceRequest]:
    """Move every pending request ``leaver`` owns to their successor; returns the moved ones."""
    serialise_writes(conn)
    identities = {leaver.name.casefold(), leaver.id.casefold()}
    if leaver.external_id:
        identities.add(leaver.external_id.casefold())
    rows = conn.execute(
        select(evidence_requests)
        .where(evidence_requests.c.open_key.is_not(None))
        .where(func.lower(evidence_requests.c.owner).in_(identities))
        .order_by(evidence_requests.c.created_at, evidence_requests.c.id)
    ).all()
    pending = [convert.request(row) for row in rows]
    heir = successor(conn, store, leaver) if pending else None
    who = SCRUBBER.pseudonym(leaver.name)
    if pending and heir is None:
        log.warning("leaver %s keeps %d requests: no active manager, no group", who, len(pending))
        return []
    moved = []
    for request in pending:
        assert heir is not None
        change = reassign_rule(request, heir[0], reason=heir[1])
        key = change.request.open_key
        if key != request.open_key and select_request(conn, evidence_requests.c.open_key == key):
            log.warning("leaver %s keeps request %s: its successor has one open", who, request.id)
            continue
        update_request(conn, request, change.request)
        record_transition(conn, store, change, _jobs(conn, request.id))
        moved.append(change.request)
    return moved


def _jobs(conn: Connection, request_id: str) -> list[FollowUp]:
    conversations = conn.execute(
        select(evidence_cards.c.conversation_id)
        .where(evidence_cards.c.request_id == request_id)
        .distinct()
    ).scalars()
    jobs = [list_job(request_id)]
    for conversation_id in sorted(conversations):
        jobs += redraw_jobs(request_id, conversation_id)
    return jobs
