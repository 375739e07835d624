"""Telling Sentinel about an incident's ITSM links: a comment, and a label per linked record.

The outbox handler of ``incident.link_note`` jobs. The comment id is fixed by the job, so a
job that runs twice leaves one comment; the label (``ServiceNow:CHG0030001``) is added with
the incident's etag, read again when someone changed the incident in between. Removing a
link adds a comment; the label stays, as a record of the link that was.
"""

from __future__ import annotations

import uuid

from connectors.sentinel.client import SentinelClient
from connectors.sentinel.errors import IncidentConflict
from connectors.sentinel.mapping import IncidentChanges
from connectors.sentinel.triage import locate
from core.errors import DeliveryError, Outcome
from core.store import comments as comment_store
from core.store.outbox import Job
from core.store.store import Store

SYSTEM_NAMES = {"servicenow": "ServiceNow", "jsm": "Jira Service Management"}
LABEL_ROUNDS = 3
"""Reads and writes of the label at most, when the incident keeps changing meanwhile."""


def link_label(system: str, number: str) -> str:
    """The label a linked record puts on the incident: ``ServiceNow:CHG0030001``."""
    return f"{SYSTEM_NAMES.get(system, system)}:{number}"


def note_text(payload: dict[str, object]) -> str:
    """The comment: ``Linked to ServiceNow CHG0030001 (url) by Ada via Teams``."""
    system = SYSTEM_NAMES.get(str(payload.get("system")), str(payload.get("system")))
    record = f"{system} {payload.get('number')}"
    who = payload.get("actor") or "someone"
    if payload.get("linked"):
        return f"Linked to {record} ({payload.get('url')}) by {who} via Teams."
    return f"Unlinked from {record} by {who} via Teams."


class LinkNoteDelivery:
    """Writes a link's comment and label to its Sentinel incident."""

    def __init__(self, client: SentinelClient, store: Store) -> None:
        self._client = client
        self._store = store

    async def __call__(self, job: Job) -> None:
        """Add the comment (idempotent), then the label when linking."""
        payload = job.payload
        incident_key = str(payload.get("incident_key"))
        try:
            workspace, name = locate(incident_key)
        except ValueError as exc:
            raise DeliveryError(str(exc), outcome=Outcome.FAIL) from exc
        comment_id = str(
            uuid.uuid5(
                uuid.NAMESPACE_URL,
                f"warden:link:{incident_key}:{payload.get('number')}:{payload.get('at')}",
            )
        )
        await comment_store.remember_own(self._store, incident_key, comment_id)
        await self._client.add_comment(workspace, name, note_text(payload), comment_id=comment_id)
        if not payload.get("linked"):
            return
        label = link_label(str(payload.get("system")), str(payload.get("number")))
        for _ in range(LABEL_ROUNDS):
            snapshot = await self._client.get_incident_snapshot(workspace, name)
            if label in snapshot.incident.labels:
                return
            try:
                await self._client.update_incident(
                    workspace, snapshot, IncidentChanges(labels_to_add=(label,))
                )
            except IncidentConflict:
                continue
            return
        raise DeliveryError("the incident kept changing; the label waits", outcome=Outcome.RETRY)
