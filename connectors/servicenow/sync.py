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
from typing import Any

import httpx

from connectors.http import resilient_client
from connectors.itsm_sync import CreateDelivery, ItsmPoller, OutcomeDelivery, sentinel_text
from connectors.servicenow.client import ServiceNowClient
from connectors.servicenow.fields import Classification, FieldMapping
from core.breaker import Breakers
from core.itsm import ChangeDraft, ItsmChange, ItsmRecord, RecordType
from core.models import Incident, IncidentStatus, Severity
from core.settings.servicenow import ServiceNowSettings
from core.store.store import Store

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


class ItsmOutcomeDelivery(OutcomeDelivery):
    """The outbox handler of ``itsm.outcome`` jobs."""

    def __init__(self, connection: ServiceNowConnection, store: Store) -> None:
        super().__init__(connection.client, store)
        self._mapping = connection.mapping

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


class CreateChangeDelivery(CreateDelivery):
    """The outbox handler of ``itsm.create_change`` jobs."""

    def __init__(self, connection: ServiceNowConnection, store: Store) -> None:
        super().__init__(connection.client, store)
        self._mapping = connection.mapping

    def draft_for(self, incident: Incident) -> ChangeDraft:
        """The change request an incident becomes (the incident's id correlates them)."""
        impact, urgency, _ = self._mapping.levels(incident.severity)
        title, description = sentinel_text(incident)
        return ChangeDraft(
            correlation_id=incident.name,
            correlation_display="Microsoft Sentinel",
            short_description=title,
            description=description,
            impact=impact,
            urgency=urgency,
        )


class ServiceNowPoller(ItsmPoller):
    """Reads back the records changed since the checkpoint, into their links and cards."""

    checkpoint = CHECKPOINT
    polled_types = POLLED_TYPES
    service = "servicenow"
    log = logging.getLogger(__name__)
