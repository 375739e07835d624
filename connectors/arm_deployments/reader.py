"""The ``arm.deployments`` job: deployments read from ARM into the store, off the click path.

An incident's job reads its entities from Sentinel, keeps the Azure resources they name
(``AzureResource`` entities' ``resourceId``, hosts' ``azureID``), takes the first alert's
time (its alerts' earliest, else the incident's creation) and stores both
(``store_incident_resources``); then it reads the deployments of each resource group holding
one of them, with the operations (the resources touched) of those that ended within the
look-back before the first alert. A group's job (queued after a CMDB sync) reads the group's
newest deployments, their output resources only, and a failed one's operations (a failed
deployment lists no output resources). ARM or Sentinel down: the ``DeliveryError`` goes to the
outbox, which retries; everything stored is an upsert, so a retried job writes nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol

from connectors.arm_deployments.client import DeploymentsClient
from connectors.arm_deployments.mapping import deployment_from_resource
from connectors.sentinel.client import Workspace
from connectors.sentinel.mapping import Alert, Entity
from connectors.sentinel.triage import locate
from core.deployments import Deployment, resource_group_of
from core.errors import DeliveryError, InvalidPayload, Outcome
from core.settings.deployments import DeploymentSettings
from core.store import deployments as deployments_store
from core.store.outbox import Job
from core.store.store import Store

log = logging.getLogger(__name__)


class IncidentSource(Protocol):
    """Where an incident's entities and alerts are read (``SentinelClient``)."""

    async def list_entities(self, workspace: Workspace, incident_name: str) -> list[Entity]:
        """The incident's entities."""

    async def list_alerts(self, workspace: Workspace, incident_name: str) -> list[Alert]:
        """The incident's alerts."""


def azure_resources(entities: Iterable[Entity]) -> list[str]:
    """The Azure resource ids (lower case, each once, in order) that ``entities`` name."""
    found: dict[str, None] = {}
    for entity in entities:
        resource_id = (entity.resource_id or "").strip()
        if resource_group_of(resource_id) is not None:
            found.setdefault(resource_id.lower())
    return list(found)


class DeploymentReader:
    """The outbox handler of ``arm.deployments`` jobs (see the module docstring)."""

    def __init__(
        self,
        client: DeploymentsClient,
        incidents: IncidentSource,
        store: Store,
        settings: DeploymentSettings,
    ) -> None:
        self._client = client
        self._incidents = incidents
        self._store = store
        self._settings = settings

    async def __call__(self, job: Job) -> None:
        """Read what the job names: an incident's resources, or a resource group."""
        incident_key = job.payload.get("incident_key")
        group = job.payload.get("resource_group")
        read_key = job.payload.get("read_key")
        if isinstance(incident_key, str) and incident_key:
            await self.incident(incident_key, read_key if isinstance(read_key, str) else None)
        elif isinstance(group, str) and resource_group_of(group) is not None:
            stored = await self.group(group)
            log.info("deployments (job %s): %d read in one resource group", job.id, stored)
        else:
            raise DeliveryError("the job names no incident or group", outcome=Outcome.FAIL)

    async def incident(self, incident_key: str, read_key: str | None = None) -> None:
        """Store the incident's resources and first alert; read their groups' deployments.

        They are read from the Sentinel incident ``read_key`` (default ``incident_key``) and
        stored under ``incident_key``. A key Sentinel does not know (a Defender XDR incident
        with no Sentinel twin yet), or an incident gone from Sentinel, leaves the card's
        incident with no resources; a twin that cannot be read leaves what is stored.
        """
        try:
            workspace, name = locate(read_key or incident_key)
        except ValueError:
            if read_key is None:
                await deployments_store.store_incident_resources(
                    self._store, incident_key, [], None
                )
            return
        try:
            resources = azure_resources(await self._incidents.list_entities(workspace, name))
        except DeliveryError as exc:
            if exc.outcome is not Outcome.GONE:
                raise
            # the incident is gone from Sentinel: nothing to show, nothing for the DLQ
            log.info("deployments of %s not read: %s", read_key or incident_key, exc)
            if read_key is None:
                await deployments_store.store_incident_resources(
                    self._store, incident_key, [], None
                )
            return
        first = await self._first_alert(incident_key, workspace, name)
        if first is not None and resources:
            window = (first - timedelta(minutes=self._settings.lookback_minutes), first)
            for group in sorted({resource_group_of(r) or "" for r in resources}):
                await self.group(group, window=window)
        await deployments_store.store_incident_resources(
            self._store, incident_key, resources, first
        )

    async def group(self, group: str, *, window: tuple[datetime, datetime] | None = None) -> int:
        """Read and store the group's newest deployments; with ``window``, the operations of
        those in it too. How many were stored."""
        found: list[Deployment] = []
        async for item in self._client.list_raw(group, top=self._settings.page_size):
            try:
                deployment = deployment_from_resource(item)
            except InvalidPayload as exc:
                log.warning("a deployment was unreadable (field %s); skipped", exc.field)
                continue
            inside = window is not None and window[0] <= deployment.timestamp <= window[1]
            if inside or (window is None and not deployment.targets):
                operations = await self._client.operations(group, deployment.name)
                deployment = deployment_from_resource(item, operations)
            found.append(deployment)
            if len(found) >= self._settings.max_per_group:
                break
        await deployments_store.store_deployments(self._store, found)
        return len(found)

    async def _first_alert(
        self, incident_key: str, workspace: Workspace, name: str
    ) -> datetime | None:
        """The earliest alert's time; the incident's creation when no alert has one."""
        alerts = await self._incidents.list_alerts(workspace, name)
        times = [alert.time for alert in alerts if alert.time is not None]
        if times:
            return min(times)
        incident = await self._store.incident(incident_key)
        return incident.created if incident is not None else None
