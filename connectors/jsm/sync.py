"""Keeping Jira Service Management and Warden in step: outcomes out, issue changes in.

Out (outbox handlers, in order per issue): ``itsm.outcome`` becomes an internal ADF comment
saying what happened and, for a new Sentinel status, the transition whose *name*
``WARDEN_JSM__TRANSITIONS`` gives; ``itsm.create_change`` creates the incident's request
(idempotent by its ``warden-<incident id>`` label) and links it.

In: ``JsmPoller`` reads the issues updated since its checkpoint less an overlap (JQL
compares ``updated`` to the minute, and a late write can carry an earlier time), and the
signed webhook brings each change at once; both go through ``links.record_changed``, which
changes a link only when its status or priority moved, so together they never duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.http import resilient_client
from connectors.jsm.client import JsmClient
from core.breaker import Breakers
from core.errors import DeliveryError, ItsmRecordNotFound, Outcome
from core.itsm import ChangeDraft, ItsmChange, ItsmRecord, ItsmSystem, RecordType
from core.metrics import Metrics
from core.models import Incident
from core.settings_jsm import JsmSettings
from core.store import checkpoints
from core.store import links as links_store
from core.store.outbox import Job
from core.store.store import Store
from core.triage import Actor

log = logging.getLogger(__name__)

CHECKPOINT = "jsm.poll"
"""The poller's checkpoint: the newest ``updated`` it has read (ISO 8601, UTC)."""

POLLED_TYPES = tuple(RecordType)
"""Every issue type can be linked, so every one's changes are read back."""


@dataclass
class JsmConnection:
    """The HTTP client, the JSM client and the transition names, for the whole process."""

    http: httpx.AsyncClient
    client: JsmClient
    transitions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: JsmSettings, breakers: Breakers) -> JsmConnection:
        """Connect as ``settings`` say (no I/O until the first call)."""
        http = resilient_client(breakers=breakers)
        return cls(http, JsmClient.from_settings(http, settings), dict(settings.transitions))

    async def aclose(self) -> None:
        """Close the client and its HTTP client."""
        await self.client.aclose()
        await self.http.aclose()


def _record_of(job: Job) -> ItsmRecord:
    """The linked issue a job addresses (by its id; the key for messages)."""
    payload = job.payload
    return ItsmRecord(
        system=ItsmSystem(str(payload["system"])),
        type=RecordType(str(payload["type"])),
        number=str(payload["number"]),
        key=str(payload["record_key"]),
        state="",
        state_label="",
    )


class JsmOutcomeDelivery:
    """The outbox handler of ``itsm.outcome`` jobs for JSM issues."""

    def __init__(self, connection: JsmConnection, store: Store) -> None:
        self._client = connection.client
        self._transitions = connection.transitions
        self._store = store

    def change_for(self, payload: dict[str, Any]) -> ItsmChange:
        """The comment and the transition (by name) that say what happened."""
        note = str(payload.get("note") or "") or None
        status = str(payload.get("status") or "")
        return ItsmChange(work_note=note, state=self._transitions.get(status) or None)

    async def __call__(self, job: Job) -> None:
        """Write the outcome to its issue; an issue gone is not retried."""
        record = _record_of(job)
        try:
            written = await self._client.update(record, self.change_for(job.payload))
        except ItsmRecordNotFound as exc:
            raise DeliveryError(f"{record.number} is gone: {exc}", outcome=Outcome.GONE) from exc
        await links_store.record_changed(self._store, written)


class CreateRequestDelivery:
    """The outbox handler of ``itsm.create_change`` jobs: the incident's request, linked."""

    def __init__(self, connection: JsmConnection, store: Store) -> None:
        self._client = connection.client
        self._store = store

    @staticmethod
    def draft_for(incident: Incident) -> ChangeDraft:
        """The request an incident becomes (the incident's id labels it)."""
        number = f"#{incident.number} " if incident.number is not None else ""
        description = f"Raised from Microsoft Sentinel incident {number.strip() or incident.name}."
        if incident.incident_url:
            description += f"\n{incident.incident_url}"
        return ChangeDraft(
            correlation_id=incident.name,
            short_description=f"Sentinel incident {number}\u00b7 {incident.title}"[:160],
            description=description,
        )

    async def __call__(self, job: Job) -> None:
        """Create (or find) the request, then link it to the incident."""
        incident = await self._store.incident(str(job.payload.get("incident_key")))
        if incident is None:
            raise DeliveryError("the incident is no longer stored", outcome=Outcome.FAIL)
        record = await self._client.create_change(self.draft_for(incident))
        actor = Actor(
            object_id=str(job.payload.get("actor_id") or ""), name=str(job.payload.get("actor"))
        )
        await links_store.link(self._store, incident, record.link(), actor)


class JsmPoller:
    """Reads back the issues changed since the checkpoint, into their links and cards."""

    def __init__(
        self,
        client: JsmClient,
        store: Store,
        *,
        first_lookback: timedelta = timedelta(hours=1),
        metrics: Metrics | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._client, self._store = client, store
        self._first_lookback = first_lookback
        self._metrics, self._on_change = metrics, on_change

    async def poll_once(self) -> int:
        """One round: the issues read; the checkpoint moves only after they are stored."""
        saved = await checkpoints.load(self._store, CHECKPOINT)
        since = datetime.fromisoformat(saved) if saved else datetime.now(UTC) - self._first_lookback
        newest, read, changed = since, 0, 0
        try:
            async for record in self._client.changed_since(since, types=POLLED_TYPES):
                read += 1
                changed += len(await links_store.record_changed(self._store, record) or ())
                if record.updated_at is not None and record.updated_at > newest:
                    newest = record.updated_at
        except DeliveryError as exc:  # the checkpoint stays; the next round reads it again
            log.warning("jsm poll failed: %s", exc)
        if newest > since:
            await checkpoints.save(self._store, CHECKPOINT, newest.isoformat())
        if changed and self._on_change is not None:
            self._on_change()
        if self._metrics is not None:
            self._metrics.sync_last_success.labels("jsm.poll").set(datetime.now(UTC).timestamp())
        return read
