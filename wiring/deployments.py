"""ARM deployments' part of the composition: the ``arm.deployments`` job over Sentinel's ARM
connection (the same identity, HTTP client and breakers)."""

from __future__ import annotations

from connectors.arm_deployments.client import DeploymentsClient
from connectors.arm_deployments.reader import DeploymentReader
from connectors.sentinel.connection import SentinelConnection
from core.settings import Settings
from core.store.store import Store


def lookback_seconds(settings: Settings, incidents: SentinelConnection | None) -> float | None:
    """The look-back the incident card uses, in seconds; None when deployments are off."""
    if incidents is None or not settings.deployments.enabled:
        return None
    return settings.deployments.lookback_minutes * 60.0


def deployment_reader(
    settings: Settings, store: Store, incidents: SentinelConnection | None
) -> DeploymentReader | None:
    """The handler of ``arm.deployments`` jobs; None when deployments are off."""
    if lookback_seconds(settings, incidents) is None or incidents is None:
        return None
    client = DeploymentsClient(incidents.http, incidents.credential, base_url=settings.arm_endpoint)
    return DeploymentReader(client, incidents.client, store, settings.deployments)
