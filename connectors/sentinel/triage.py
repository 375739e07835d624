"""Triage changes written to Sentinel from the outbox, and what a card reads on demand.

``SentinelTriage`` runs ``incident.triage`` jobs: it reads the incident fresh, refuses the
change if a field the person changed no longer holds what their card showed (someone else was
first), writes it with the incident's etag (re-reading and re-applying once more if Sentinel
answers that the etag is stale), adds the attribution comment (``Severity High → Medium by Ada
via Teams``), and stores the new version so every card shows it. A change already in place
(the job ran before and stopped half-way) is finished, not refused. Sentinel down or
throttling: the action is *waiting* and the job retries; the retries spent, or a refusal
retrying cannot fix: *not applied*, with the reason and a *Try again* button.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from connectors.sentinel.client import SentinelClient, Workspace
from connectors.sentinel.errors import (
    IncidentConflict,
    IncidentNotFound,
    InvalidIncidentChange,
    SentinelError,
)
from connectors.sentinel.mapping import IncidentChanges
from core.errors import DeliveryError, Outcome
from core.ingest import IngestWriter
from core.models import Incident, IncidentStatus
from core.store import comments as comment_store
from core.store import triage as triage_store
from core.store.outbox import Job
from core.store.store import Store
from core.triage import (
    IncidentDetails,
    TriageAction,
    TriageChange,
    TriageState,
    attribution,
    observed,
)

log = logging.getLogger(__name__)

SHOWN = 5
"""Alerts and entities listed on a card."""

_WRITE_ROUNDS = 3
"""Reads and writes tried when Sentinel keeps answering that the etag is stale."""


def locate(incident_key: str) -> tuple[Workspace, str]:
    """The workspace and incident name in an incident's ARM resource id.

    ``ValueError`` for a key that is not a Sentinel incident id.
    """
    parts = incident_key.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    try:
        subscription = parts[lowered.index("subscriptions") + 1]
        group = parts[lowered.index("resourcegroups") + 1]
        workspace = parts[lowered.index("workspaces") + 1]
        name = parts[lowered.index("incidents") + 1]
    except (ValueError, IndexError):
        raise ValueError("not a Sentinel incident resource id") from None
    return Workspace(subscription, group, workspace), name


def changes_for(change: TriageChange) -> IncidentChanges:
    """The Sentinel update that makes ``change``."""
    if change.kind == "assign":
        return IncidentChanges(owner=change.owner)
    if change.kind == "severity":
        return IncidentChanges(severity=change.severity)
    if change.status is IncidentStatus.CLOSED:
        return IncidentChanges(
            status=IncidentStatus.CLOSED,
            classification=change.classification,  # type: ignore[arg-type]
            classification_reason=change.reason,  # type: ignore[arg-type]
            classification_comment=change.comment,
        )
    return IncidentChanges(status=change.status)


def in_place(change: TriageChange, incident: Incident) -> bool:
    """True when ``incident`` already holds what ``change`` asks for."""
    if change.kind == "assign":
        wanted = (change.owner.object_id or "") if change.owner else ""
        return observed(incident)["owner"].lower() == wanted.lower()
    if change.kind == "severity":
        return incident.severity is change.severity
    if change.kind == "status":
        if change.status is IncidentStatus.CLOSED:
            return (
                incident.status is IncidentStatus.CLOSED
                and incident.classification == change.classification
            )
        return incident.status is change.status
    return False


def _comment_id(intent_id: str, purpose: str) -> str:
    """A comment id fixed by the intent, so a job that runs twice leaves one comment."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"warden:{intent_id}:{purpose}"))


class SentinelTriage:
    """The outbox handler of ``incident.triage`` jobs."""

    def __init__(
        self,
        client: SentinelClient,
        store: Store,
        writer: IngestWriter,
        *,
        max_attempts: int,
    ) -> None:
        self._client = client
        self._store = store
        self._writer = writer
        self._max_attempts = max_attempts

    async def __call__(self, job: Job) -> None:
        """Apply the job's action to Sentinel, and record how it went."""
        intent = str(job.payload.get("intent", ""))
        found = await triage_store.open_action(self._store, intent)
        if found is None:
            return
        action, stored = found
        try:  # the stored version may be Sentinel's own under a Defender XDR twin's key
            workspace, name = locate(stored.native_key if stored else action.incident_key)
            state, detail = await self._apply(action, workspace, name)
        except (InvalidIncidentChange, IncidentNotFound, ValueError) as exc:
            message = exc.user_message if isinstance(exc, SentinelError) else str(exc)
            await triage_store.set_state(self._store, intent, TriageState.FAILED, message)
            return
        except DeliveryError as exc:
            if exc.outcome in (Outcome.FAIL, Outcome.GONE):
                message = exc.user_message if isinstance(exc, SentinelError) else str(exc)
                await triage_store.set_state(self._store, intent, TriageState.FAILED, message)
                return
            spent = job.attempts + 1 >= self._max_attempts
            await triage_store.set_unanswered(self._store, intent, "Sentinel", spent=spent)
            raise
        await triage_store.set_state(self._store, intent, state, detail)

    async def _apply(
        self, action: TriageAction, workspace: Workspace, name: str
    ) -> tuple[TriageState, str | None]:
        change = action.change
        for _ in range(_WRITE_ROUNDS):
            snapshot = await self._client.get_incident_snapshot(workspace, name)
            current = snapshot.incident
            await self._writer.submit(current)
            if change.kind == "comment":
                message = f"{change.comment}\n\n\u2014 {action.actor.display} via Teams"
                cid = _comment_id(action.intent_id, "comment")
                await comment_store.remember_own(self._store, action.incident_key, cid)
                await self._client.add_comment(workspace, name, message, comment_id=cid)
                return TriageState.APPLIED, None
            if not in_place(change, current):
                conflict = change.conflict_with(current)
                if conflict is not None:
                    return TriageState.CONFLICT, f"Someone changed it first: {conflict}."
                try:
                    current = await self._client.update_incident(
                        workspace, snapshot, changes_for(change)
                    )
                except IncidentConflict:
                    continue  # changed between our read and our write: read again
                await self._writer.submit(current)
            owner = current.owner.display if change.kind == "assign" else None
            cid = _comment_id(action.intent_id, "attribution")
            await comment_store.remember_own(self._store, action.incident_key, cid)
            comment = attribution(action, owner)
            await self._client.add_comment(workspace, name, comment, comment_id=cid)
            return TriageState.APPLIED, (f"Owner: {owner}" if owner else None)
        return TriageState.CONFLICT, "The incident kept changing in Sentinel; nothing was changed."


class SentinelDetails:
    """The first alerts and entities of an incident, read from Sentinel for a card."""

    def __init__(self, client: SentinelClient) -> None:
        self._client = client

    async def details(self, incident_key: str) -> IncidentDetails:
        """Read both lists at once; ``DeliveryError`` when Sentinel does not answer."""
        workspace, name = locate(incident_key)
        alerts, entities = await asyncio.gather(
            self._client.list_alerts(workspace, name),
            self._client.list_entities(workspace, name),
        )
        return IncidentDetails(
            alerts=tuple(
                (
                    alert.display_name,
                    " \u00b7 ".join(
                        part
                        for part in (
                            alert.severity.value if alert.severity else None,
                            alert.status,
                            alert.product,
                        )
                        if part
                    ),
                )
                for alert in alerts[:SHOWN]
            ),
            entities=tuple(
                (entity.kind, entity.friendly_name or entity.name) for entity in entities[:SHOWN]
            ),
            more_alerts=max(0, len(alerts) - SHOWN),
            more_entities=max(0, len(entities) - SHOWN),
        )
