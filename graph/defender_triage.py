"""Triage changes written to Defender XDR from the outbox, and what a card reads on demand.

``DefenderTriage`` runs the ``incident.triage`` jobs of incidents whose stored version came
from Defender XDR: it reads the incident fresh, refuses the change if a field the person
changed no longer holds what their card showed, PATCHes it through Graph security, adds the
attribution comment (``Status New → Active by Ada via Teams``) and stores the new version so
every card shows it. An assignment names the person by user principal name (Defender XDR's
``assignedTo``), looked up in the directory from their Entra object id.

Graph answering 403 (Warden may not update this incident) is shown on the card as *not
applied* with the reason, and never retried; throttling or an outage leaves the action
*waiting* while the outbox retries, until its attempts are spent.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Protocol

from msgraph.generated.models.security.alert_determination import AlertDetermination

from core.errors import DeliveryError, Outcome
from core.ingest import IngestWriter
from core.models import Incident, IncidentStatus
from core.store import triage as triage_store
from core.store.outbox import Job
from core.store.store import Store
from core.triage import IncidentDetails, TriageAction, TriageState, attribution
from graph.defender_mapping import PRODUCTS, UnsupportedChange, incident_id, patch_for, wire
from graph.security import DefenderClient, Snapshot

log = logging.getLogger(__name__)

SHOWN = 5
"""Alerts listed on a card."""

REFUSED = (
    "Defender XDR did not let Warden update this incident (Graph answered 403). Ask an "
    "administrator to grant Warden SecurityIncident.ReadWrite.All, or change it in the "
    "Microsoft Defender portal."
)


class Directory(Protocol):
    """Finds a person's user principal name (``graph.people.People``)."""

    async def user_by_upn(self, upn: str) -> object | None:
        """The user (with ``upn``) whose principal name or object id is ``upn``."""


def in_place(action: TriageAction, incident: Incident, assignee: str | None) -> bool:
    """True when ``incident`` already holds what the action asks for."""
    change = action.change
    if change.kind == "assign":
        return bool(assignee) and (incident.owner.upn or "").lower() == (assignee or "").lower()
    if change.kind == "status" and change.status is IncidentStatus.CLOSED:
        return (
            incident.status is IncidentStatus.CLOSED
            and incident.classification == change.classification
        )
    return change.kind == "status" and incident.status is change.status


class DefenderTriage:
    """The outbox handler of ``incident.triage`` jobs on Defender XDR incidents."""

    def __init__(
        self,
        client: DefenderClient,
        store: Store,
        writer: IngestWriter,
        *,
        people: Directory | None,
        max_attempts: int,
    ) -> None:
        self._client = client
        self._store = store
        self._writer = writer
        self._people = people
        self._max_attempts = max_attempts

    async def __call__(self, job: Job) -> None:
        """Apply the job's action to Defender XDR, and record how it went."""
        intent = str(job.payload.get("intent", ""))
        found = await triage_store.open_action(self._store, intent)
        if found is None:
            return
        action, stored = found
        try:
            target = incident_id(stored.native_key if stored else action.incident_key)
            state, detail = await self._apply(action, target)
        except (UnsupportedChange, ValueError) as exc:
            await triage_store.set_state(self._store, intent, TriageState.FAILED, str(exc))
            return
        except DeliveryError as exc:
            await self._failed(job, intent, exc)
            return
        await triage_store.set_state(self._store, intent, state, detail)

    async def _failed(self, job: Job, intent: str, exc: DeliveryError) -> None:
        """Record a failed call: final for a refusal, *waiting* (and raise) for the rest."""
        if exc.status == 403:
            log.info("defender triage refused by Graph (403)")
            await triage_store.set_state(self._store, intent, TriageState.FAILED, REFUSED)
            return
        if exc.outcome in (Outcome.FAIL, Outcome.GONE):
            detail = f"Defender XDR refused the change ({exc.status or 'no answer'})."
            await triage_store.set_state(self._store, intent, TriageState.FAILED, detail)
            return
        spent = job.attempts + 1 >= self._max_attempts
        await triage_store.set_unanswered(self._store, intent, "Defender XDR", spent=spent)
        raise exc

    async def _apply(self, action: TriageAction, target: str) -> tuple[TriageState, str | None]:
        change = action.change
        snapshot = await self._client.get_incident(target)
        current = snapshot.incident
        await self._writer.submit(current)
        if change.kind == "comment":
            text = f"{change.comment}\n\n\u2014 {action.actor.display} via Teams"
            await self._comment_once(snapshot, target, text, action)
            return TriageState.APPLIED, None
        assignee = await self._assignee(action) if change.kind == "assign" else None
        if not in_place(action, current, assignee):
            conflict = change.conflict_with(current)
            if conflict is not None:
                return TriageState.CONFLICT, f"Someone changed it first: {conflict}."
            now = snapshot.raw.determination if change.kind == "status" else None
            body = patch_for(change, assignee=assignee, now=_known(now))
            current = await self._client.update_incident(target, body)
            await self._writer.submit(current)
        owner = current.owner.display if change.kind == "assign" else None
        await self._comment_once(snapshot, target, attribution(action, owner), action)
        return TriageState.APPLIED, (f"Owner: {owner}" if owner else None)

    async def _assignee(self, action: TriageAction) -> str:
        """The new owner's user principal name, from their object id."""
        owner = action.change.owner
        if owner is None or not (owner.object_id or owner.upn):
            raise UnsupportedChange("The assignment names nobody.")
        if owner.upn:
            return owner.upn
        if self._people is None:
            raise UnsupportedChange(
                "Warden cannot look people up, so it cannot assign in Defender."
            )
        person = await self._people.user_by_upn(owner.object_id or "")
        upn = getattr(person, "upn", None)
        if not upn:
            raise UnsupportedChange("That person is not in the directory.")
        return str(upn)

    async def _comment_once(
        self, snapshot: Snapshot, target: str, text: str, action: TriageAction
    ) -> None:
        """Add ``text`` unless this action already did (a retried job writes it once)."""
        since = datetime.fromtimestamp(action.created_at, tz=timezone.utc)
        for comment in snapshot.raw.comments or []:
            made = comment.created_date_time
            if comment.comment == text and made is not None and made >= since:
                return
        await self._client.add_comment(target, text)


def _known(value: AlertDetermination | None) -> AlertDetermination | None:
    """A determination worth keeping (not ``unknown``)."""
    return None if value in (None, AlertDetermination.Unknown) else value


class DefenderDetails:
    """The first alerts of a Defender XDR incident, read from ``alerts_v2`` for a card."""

    def __init__(self, client: DefenderClient) -> None:
        self._client = client

    async def details(self, incident_key: str) -> IncidentDetails:
        """The alerts (``ValueError`` for another source's key, ``DeliveryError`` offline)."""
        alerts = await self._client.list_alerts(incident_id(incident_key))
        shown = []
        for alert in alerts[:SHOWN]:
            severity = wire(alert.severity)
            parts = [
                severity.capitalize() if severity else None,
                wire(alert.status),
                PRODUCTS.get(wire(alert.service_source) or "", wire(alert.service_source)),
            ]
            shown.append(
                (alert.title or alert.id or "alert", " \u00b7 ".join(p for p in parts if p))
            )
        return IncidentDetails(alerts=tuple(shown), more_alerts=max(0, len(alerts) - SHOWN))
