"""Build the Sentinel poller from settings: the ARM client, its credential and its workspaces."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import ClientSecretCredential, DefaultAzureCredential

from connectors.http import resilient_client
from connectors.sentinel.client import SentinelClient, Workspace
from connectors.sentinel.poller import SentinelPoller
from core.breaker import Breakers
from core.errors import SettingsError
from core.ingest import IngestWriter
from core.leader import run_as_leader
from core.settings import Settings
from core.store.store import Store


def credential(settings: Settings) -> AsyncTokenCredential:
    """Warden's ARM identity: a client secret when configured, else a managed identity."""
    options: dict[str, Any] = {}
    if settings.arm_ca_bundle is not None:
        options["connection_verify"] = str(settings.arm_ca_bundle)
    secret = settings.azure_client_secret.get_secret_value()
    if settings.azure_tenant_id and settings.azure_client_id and secret:
        if settings.azure_authority_host:
            options["authority"] = settings.azure_authority_host
        return ClientSecretCredential(
            settings.azure_tenant_id, settings.azure_client_id, secret, **options
        )
    return DefaultAzureCredential(**options)


def workspaces(settings: Settings) -> list[Workspace]:
    """The configured workspaces; ``SettingsError`` naming the variable for a bad one."""
    try:
        return [Workspace.parse(text) for text in settings.sentinel_workspaces]
    except ValueError as exc:
        raise SettingsError(f"WARDEN_SENTINEL_WORKSPACES: {exc}") from None


async def open_poller(
    settings: Settings,
    writer: IngestWriter,
    store: Store,
    breakers: Breakers,
    stack: AsyncExitStack,
) -> SentinelPoller:
    """A poller over the configured workspaces; its client and credential close with ``stack``."""
    verify: ssl.SSLContext | bool = True
    if settings.arm_ca_bundle is not None:
        verify = ssl.create_default_context(cafile=str(settings.arm_ca_bundle))
    http = await stack.enter_async_context(resilient_client(breakers=breakers, verify=verify))
    token = credential(settings)
    stack.push_async_callback(token.close)
    client = SentinelClient(http, token, base_url=settings.arm_endpoint)
    return SentinelPoller(client, workspaces(settings), writer, store)


async def polling(
    settings: Settings, writer: IngestWriter, store: Store, breakers: Breakers
) -> AsyncIterator[None]:
    """Poll Sentinel on one replica at a time while Warden runs (an aiohttp cleanup context)."""
    async with AsyncExitStack() as stack:
        poller = await open_poller(settings, writer, store, breakers, stack)

        async def round_() -> None:
            await poller.poll_once()

        every = settings.sentinel_poll_seconds
        task = asyncio.create_task(
            run_as_leader(store, "sentinel-poller", round_, retry_seconds=every)
        )
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
