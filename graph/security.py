"""Defender XDR incidents through Microsoft Graph security (v1.0), with msgraph-sdk.

``DefenderClient`` lists the incidents updated since a moment (``GET /security/incidents``
with ``$filter=lastUpdateDateTime ge …`` and ``$expand=alerts``, following
``@odata.nextLink``), reads one, updates one (``PATCH``: status, assignedTo, classification,
determination, customTags) and comments on one (``POST /security/incidents/{id}/comments``,
an ``alertComment``; msgraph-sdk has no builder for it, so the request is built here and sent
through the same adapter). It reads an incident's alerts from ``/security/alerts_v2``.

Every call goes through Warden's resilient transport (``graph.client``): 429 and 5xx are
retried honouring ``Retry-After``; an answer retrying cannot change (403, 404) becomes a
``DeliveryError`` with outcome FAIL or GONE, which the caller shows rather than retries.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.security.alert import Alert as GraphAlert
from msgraph.generated.models.security.incident import Incident as GraphIncident
from msgraph.generated.security.alerts_v2.alerts_v2_request_builder import Alerts_v2RequestBuilder
from msgraph.generated.security.incidents.incidents_request_builder import (
    IncidentsRequestBuilder,
)
from msgraph.generated.security.incidents.item.incident_item_request_builder import (
    IncidentItemRequestBuilder,
)
from msgraph.graph_service_client import GraphServiceClient

from core.errors import DeliveryError, Outcome
from core.models import Incident
from graph import DEFENDER_VERSION
from graph.defender_mapping import incident_from_graph
from graph.sharepoint import call

__version__ = DEFENDER_VERSION
"""The Defender XDR connector's version (the ``graph`` package's is SharePoint's)."""

PAGE_SIZE = 50
"""Incidents asked for per page (Graph's maximum for ``security/incidents``)."""


@dataclass(frozen=True)
class Snapshot:
    """An incident as Graph answered it (the SDK model) and as Warden shows it."""

    raw: GraphIncident
    incident: Incident


def _instant(moment: datetime) -> str:
    """An OData ``DateTimeOffset`` literal in UTC (``2026-01-01T00:00:00.000000Z``)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class DefenderClient:
    """Defender XDR incidents, alerts and comments through one ``GraphServiceClient``."""

    def __init__(self, graph: GraphServiceClient, *, page_size: int = PAGE_SIZE) -> None:
        self._graph = graph
        self._page_size = page_size

    async def list_incidents(self, *, updated_since: datetime) -> AsyncIterator[Incident]:
        """Every incident updated at or after ``updated_since``, with its alerts, page by page."""
        query = IncidentsRequestBuilder.IncidentsRequestBuilderGetQueryParameters(
            filter=f"lastUpdateDateTime ge {_instant(updated_since)}",
            expand=["alerts"],
            top=self._page_size,
        )
        builder = self._graph.security.incidents
        page = await call("incidents", builder.get(RequestConfiguration(query_parameters=query)))
        while page is not None:
            for found in page.value or []:
                yield incident_from_graph(found)
            if not page.odata_next_link:
                return
            page = await call("incidents", builder.with_url(page.odata_next_link).get())

    async def get_incident(self, incident_id: str) -> Snapshot:
        """One incident with its alerts (``DeliveryError`` GONE when there is none)."""
        query = IncidentItemRequestBuilder.IncidentItemRequestBuilderGetQueryParameters(
            expand=["alerts"]
        )
        item = self._graph.security.incidents.by_incident_id(incident_id)
        found = await call("incident", item.get(RequestConfiguration(query_parameters=query)))
        if found is None:
            raise DeliveryError("Graph answered an incident without a body", outcome=Outcome.RETRY)
        return Snapshot(found, incident_from_graph(found))

    async def update_incident(self, incident_id: str, body: GraphIncident) -> Incident:
        """Apply ``body`` (only the fields set) and return the incident as updated."""
        item = self._graph.security.incidents.by_incident_id(incident_id)
        updated = await call("incident update", item.patch(body))
        if updated is None or updated.last_update_date_time is None:
            return (await self.get_incident(incident_id)).incident
        if updated.alerts is None:  # PATCH answers without the expanded alerts
            updated.alerts = (await self.get_incident(incident_id)).raw.alerts
        return incident_from_graph(updated)

    async def add_comment(self, incident_id: str, text: str) -> None:
        """Add an ``alertComment`` to the incident (sent once: a POST is not retried)."""
        adapter = self._graph.request_adapter
        info = RequestInformation(
            Method.POST,
            "{+baseurl}/security/incidents/{incident_id}/comments",
            {"baseurl": adapter.base_url.rstrip("/"), "incident_id": incident_id},
        )
        info.headers.try_add("Content-Type", "application/json")
        info.headers.try_add("Accept", "application/json")
        body = {"@odata.type": "#microsoft.graph.security.alertComment", "comment": text}
        info.content = json.dumps(body).encode()
        errors: dict[str, Any] = {"XXX": ODataError}
        send: Any = adapter.send_primitive_async  # typed ``-> None`` by kiota-abstractions
        await call("incident comment", send(info, "bytes", errors))

    async def list_alerts(self, incident_id: str) -> list[GraphAlert]:
        """The incident's alerts from ``/security/alerts_v2`` (first page, newest first)."""
        query = Alerts_v2RequestBuilder.Alerts_v2RequestBuilderGetQueryParameters(
            filter=f"incidentId eq '{incident_id.replace(chr(39), chr(39) * 2)}'",
            top=self._page_size,
        )
        page = await call(
            "alerts",
            self._graph.security.alerts_v2.get(RequestConfiguration(query_parameters=query)),
        )
        return list(page.value or []) if page is not None else []
