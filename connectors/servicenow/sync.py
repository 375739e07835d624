"""Keeping ServiceNow and Warden in step: outcomes out, record changes in.

Out (outbox handlers, so an outage only delays them, in order per record):

- ``itsm.outcome``: what happened to a linked incident (who changed what; its new status or
  severity) becomes a work note and the mapped state or impact/urgency on the record;
- ``itsm.create_change``: *Create change* on a card: the change request of the incident
  (idempotent by ``correlation_id`` = the incident's id), then linked to it.

In: ``ServiceNowPoller`` reads the records updated since its checkpoint (less an overlap, so a
late write is not missed) and ``POST /api/webhooks/servicenow`` brings each change at once;
both go through ``links.record_changed``, which changes a link (and redraws its cards) only
when its state or priority moved, so the two together never duplicate anything. Each record
Warden writes is stored back on its links as ServiceNow answered it, so the write coming
back through the webhook or the poll changes nothing (no echo).
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.http import resilient_client
from connectors.servicenow.client import ServiceNowClient
from connectors.servicenow.fields import Classification, FieldMapping
from core.breaker import Breakers
from core.errors import DeliveryError, ItsmRecordNotFound, Outcome
from core.itsm import ChangeDraft, ItsmChange, ItsmRecord, ItsmSystem, RecordType
from core.metrics import Metrics
from core.models import Incident, IncidentStatus, Severity
from core.settings_servicenow import ServiceNowSettings
from core.store import checkpoints
from core.store import links as links_store
from core.store.outbox import Job
from core.store.store import Store
from core.triage import Actor

log = logging.getLogger(__name__)

CHECKPOINT = "servicenow.poll"
"""The poller's checkpoint: the ``sys_updated_on`` it has read up to (ISO 8601, UTC)."""

POLLED_TYPES = (RecordType.CHANGE_REQUEST, RecordType.INCIDENT)
"""The tables whose records can be linked, so whose changes are read back."""


@dataclass
class ServiceNowConnection:
    """The HTTP client, the Table API client and the field mapping, for the whole process."""

    http: httpx.AsyncClient
    client: ServiceNowClient
    mapping: FieldMapping

    @classmethod
    def from_settings(
        cls, settings: ServiceNowSettings, breakers: Breakers
    ) -> ServiceNowConnection:
        """Connect as ``settings`` say (no I/O until the first call)."""
        verify: ssl.SSLContext | bool = True
        if settings.ca_bundle is not None:
            verify = ssl.create_default_context(cafile=str(settings.ca_bundle))
        http = resilient_client(breakers=breakers, verify=verify)
        client = ServiceNowClient.from_settings(http, settings)
        return cls(http, client, FieldMapping.from_settings(settings))

    async def aclose(self) -> None:
        """Close the Table API client and its HTTP client."""
        await self.client.aclose()
        await self.http.aclose()


def _record_of(job: Job) -> ItsmRecord:
    """The linked record a job addresses (by its immutable key; the number for messages)."""
    payload = job.payload
    return ItsmRecord(
        system=ItsmSystem(str(payload["system"])),
        type=RecordType(str(payload["type"])),
        number=str(payload["number"]),
        key=str(payload["record_key"]),
        state="",
        state_label="",
    )


class ItsmOutcomeDelivery:
    """The outbox handler of ``itsm.outcome`` jobs."""

    def __init__(self, connection: ServiceNowConnection, store: Store) -> None:
        self._client = connection.client
        self._mapping = connection.mapping
        self._store = store

    def change_for(self, record: ItsmRecord, payload: dict[str, Any]) -> ItsmChange:
        """The work note and state/impact/urgency that say what happened."""
        note = str(payload.get("note") or "")
        fields: dict[str, Any] = {}
        status = payload.get("status")
        if status:
            classification = payload.get("classification")
            kind = Classification(classification) if classification in set(Classification) else None
            state = self._mapping.to_record(record.type, IncidentStatus(status), kind, note=note)
            fields.update(state.model_dump(exclude_none=True, exclude={"fields"}))
        severity = payload.get("severity")
        if severity:
            levels = self._mapping.severity_change(Severity.parse(str(severity)))
            fields.update(levels.model_dump(exclude_none=True, exclude={"fields"}))
        return ItsmChange(work_note=note or None, **fields)

    async def __call__(self, job: Job) -> None:
        """Write the outcome to its record; a record gone is not retried."""
        record = _record_of(job)
        try:
            written = await self._client.update(record, self.change_for(record, job.payload))
        except ItsmRecordNotFound as exc:
            raise DeliveryError(f"{record.number} is gone: {exc}", outcome=Outcome.GONE) from exc
        await links_store.record_changed(self._store, written)


class CreateChangeDelivery:
    """The outbox handler of ``itsm.create_change`` jobs."""

    def __init__(self, connection: ServiceNowConnection, store: Store) -> None:
        self._client = connection.client
        self._mapping = connection.mapping
        self._store = store

    def draft_for(self, incident: Incident) -> ChangeDraft:
        """The change request an incident becomes (the incident's id correlates them)."""
        impact, urgency, _ = self._mapping.levels(incident.severity)
        number = f"#{incident.number} " if incident.number is not None else ""
        title = f"Sentinel incident {number}\u00b7 {incident.title}"
        description = f"Raised from Microsoft Sentinel incident {number.strip() or incident.name}."
        if incident.incident_url:
            description += f"\n{incident.incident_url}"
        return ChangeDraft(
            correlation_id=incident.name,
            correlation_display="Microsoft Sentinel",
            short_description=title[:160],
            description=description,
            impact=impact,
            urgency=urgency,
        )

    async def __call__(self, job: Job) -> None:
        """Create (or find) the change, then link it to the incident."""
        incident = await self._store.incident(str(job.payload.get("incident_key")))
        if incident is None:
            raise DeliveryError("the incident is no longer stored", outcome=Outcome.FAIL)
        record = await self._client.create_change(self.draft_for(incident))
        actor = Actor(
            object_id=str(job.payload.get("actor_id") or ""), name=str(job.payload.get("actor"))
        )
        await links_store.link(self._store, incident, record.link(), actor)


class ServiceNowPoller:
    """Reads back the records changed since the checkpoint, into their links and cards."""

    def __init__(
        self,
        client: ServiceNowClient,
        store: Store,
        *,
        first_lookback: timedelta = timedelta(hours=1),
        metrics: Metrics | None = None,
        on_change: Any = None,
    ) -> None:
        self._client = client
        self._store = store
        self._first_lookback = first_lookback
        self._metrics = metrics
        self._on_change = on_change

    async def poll_once(self) -> int:
        """One round: the records read; the checkpoint moves only after they are stored."""
        saved = await checkpoints.load(self._store, CHECKPOINT)
        since = datetime.fromisoformat(saved) if saved else datetime.now(UTC) - self._first_lookback
        newest = since
        read = changed = 0
        try:
            async for record in self._client.changed_since(since, types=POLLED_TYPES):
                read += 1
                changed += len(await links_store.record_changed(self._store, record) or ())
                if record.updated_at is not None and record.updated_at > newest:
                    newest = record.updated_at
        except DeliveryError as exc:  # the checkpoint stays; the next round reads it again
            log.warning("servicenow poll failed: %s", exc)
        if newest > since:
            await checkpoints.save(self._store, CHECKPOINT, newest.isoformat())
        if changed and self._on_change is not None:
            self._on_change()
        if self._metrics is not None:
            self._metrics.sync_last_success.labels("servicenow.poll").set(
                datetime.now(UTC).timestamp()
            )
        return read
