"""Defender XDR wiring: the Graph security client, its poller, and triage by incident source.

Defender XDR is on when ``WARDEN_DEFENDER__ENABLED`` is set, its feature flag
(``WARDEN_CONNECTORS__DEFENDER__ENABLED``) is on and Warden has its Azure app identity (the
Sentinel connection's credential, which Graph accepts too; Sentinel's own flag may be off).
A triage job goes to the source of the incident's stored version (``TriageBySource``), and
waits in the outbox while that source's connector is switched off; *Show alerts* goes to the
source too (``DetailsBySource``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from bot.roles import RoleGate
from bot.triage import DetailsSource, TriageDesk
from connectors.registry import enabled, held, is_on
from connectors.sentinel.connection import SentinelConnection, tls_verify
from connectors.sentinel.triage import SentinelDetails, SentinelTriage
from core.breaker import Breakers
from core.errors import DeliveryError, Outcome
from core.ingest import IngestWriter
from core.itsm import ItsmSystem
from core.models import IncidentSource
from core.settings import Settings
from core.store import triage as triage_store
from core.store.outbox import Job
from core.store.store import Store
from core.triage import IncidentDetails, TriageState
from core.worker import Handler

if TYPE_CHECKING:  # Graph is imported where Defender is wired (ADR 9)
    from graph.people import People
    from graph.security import DefenderClient

log = logging.getLogger(__name__)


@dataclass
class DefenderParts:
    """The Defender XDR client, the directory look-up it assigns with, and their HTTP client."""

    client: DefenderClient
    people: People
    http: httpx.AsyncClient

    async def aclose(self) -> None:
        """Close the HTTP client (after the outbox worker has stopped)."""
        await self.http.aclose()


def connect(
    settings: Settings, breakers: Breakers, sentinel: SentinelConnection | None
) -> DefenderParts | None:
    """Defender XDR's parts, or ``None`` when it is off or Warden has no Azure identity."""
    if not is_on(settings, "defender"):
        return None
    if sentinel is None:
        log.warning("Defender XDR is enabled but no Azure app identity is configured")
        return None
    from graph.client import graph_client, graph_http
    from graph.people import People
    from graph.security import DefenderClient

    http = graph_http(breakers, tls_verify(settings))
    graph = graph_client(sentinel.credential, http, base_url=settings.graph_endpoint)
    client = DefenderClient(graph, page_size=settings.defender.page_size)
    return DefenderParts(client, People(graph, bind_base=settings.graph_endpoint), http)


def triage_handler(
    settings: Settings,
    store: Store,
    writer: IngestWriter,
    sentinel: SentinelConnection | None,
    defender: DefenderParts | None,
) -> TriageBySource | None:
    """The ``incident.triage`` handler of the sources Warden writes to; None when neither.

    ``sentinel`` is the Sentinel connection when its flag is on. A source whose connector is
    switched off gets a holding handler: its triage waits in the outbox, unspent.
    """
    if sentinel is None and defender is None:
        return None
    attempts = settings.outbox.max_attempts
    by_source: dict[IncidentSource, Handler] = {}
    if sentinel is not None:
        by_source[IncidentSource.SENTINEL] = SentinelTriage(
            sentinel.client, store, writer, max_attempts=attempts
        )
    elif not enabled(settings, "sentinel"):
        by_source[IncidentSource.SENTINEL] = held("sentinel")
    if defender is not None:
        from graph.defender_triage import DefenderTriage

        by_source[IncidentSource.DEFENDER] = DefenderTriage(
            defender.client, store, writer, people=defender.people, max_attempts=attempts
        )
    elif not enabled(settings, "defender"):
        by_source[IncidentSource.DEFENDER] = held("defender")
    return TriageBySource(store, by_source)


def triage_desk(
    store: Store,
    sentinel: SentinelConnection | None,
    incidents: SentinelConnection | None,
    defender: DefenderParts | None = None,
    *,
    roles: RoleGate,
    itsm: Sequence[ItsmSystem] = (),
) -> TriageDesk | None:
    """Triage from cards, when Warden can write to Sentinel or Defender XDR; responders
    checked by ``roles``. ``sentinel`` is the Azure identity, ``incidents`` Sentinel when on."""
    if sentinel is None or (incidents is None and defender is None):
        return None
    sources: dict[IncidentSource, DetailsSource] = {}
    if incidents is not None:
        sources[IncidentSource.SENTINEL] = SentinelDetails(incidents.client)
    if defender is not None:
        from graph.defender_triage import DefenderDetails

        sources[IncidentSource.DEFENDER] = DefenderDetails(defender.client)
    details = DetailsBySource(store, sources)
    return TriageDesk(store, roles=roles, details=details, itsm=itsm)


class TriageBySource:
    """The ``incident.triage`` handler: the job goes to its incident's source's handler."""

    def __init__(self, store: Store, handlers: Mapping[IncidentSource, Handler]) -> None:
        self._store = store
        self._handlers = dict(handlers)

    async def __call__(self, job: Job) -> None:
        """Run the job with the handler of the stored version's source."""
        intent = str(job.payload.get("intent", ""))
        action = await triage_store.by_intent(self._store, intent)
        if action is None:
            raise DeliveryError("the triage action is no longer stored", outcome=Outcome.FAIL)
        incident = await self._store.incident(action.incident_key)
        source = incident.source if incident is not None else IncidentSource.SENTINEL
        handler = self._handlers.get(source)
        if handler is None:
            detail = f"Warden is not connected to {source.value.capitalize()}; nothing changed."
            await triage_store.set_state(self._store, intent, TriageState.FAILED, detail)
            return
        await handler(job)


class DetailsBySource:
    """*Show alerts and entities* from the source of the incident's stored version."""

    def __init__(self, store: Store, sources: Mapping[IncidentSource, DetailsSource]) -> None:
        self._store = store
        self._sources = dict(sources)

    async def details(self, incident_key: str) -> IncidentDetails:
        """The details (``ValueError`` when Warden cannot read that source)."""
        incident = await self._store.incident(incident_key)
        source = incident.source if incident is not None else IncidentSource.SENTINEL
        reader = self._sources.get(source)
        if reader is None:
            raise ValueError(f"not connected to {source.value}")
        return await reader.details(incident.native_key if incident else incident_key)
