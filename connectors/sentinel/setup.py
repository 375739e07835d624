"""Build Sentinel's poller and reconcile from settings: the ARM client, credential, workspaces."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from connectors.http import resilient_client
from connectors.sentinel.client import SentinelClient, Workspace
from connectors.sentinel.poller import SentinelPoller
from connectors.sentinel.reconcile import (
    LEADER_NAME,
    Progress,
    ReconcileBusy,
    ReconcileRun,
    SentinelReconciler,
)
from core.breaker import Breakers
from core.errors import SettingsError
from core.ingest import IngestWriter
from core.leader import leadership, run_as_leader
from core.metrics import Metrics
from core.settings import Settings
from core.store.store import Store

if TYPE_CHECKING:
    import httpx
    from azure.core.credentials_async import AsyncTokenCredential

RECONCILE_CHECK_SECONDS = 60.0
"""How often the leader checks whether a reconcile is due (or left unfinished)."""


def credential(settings: Settings) -> AsyncTokenCredential:
    """Warden's ARM identity: a client secret when configured, else a managed identity.

    azure-identity (and MSAL under it) is loaded here, when an identity is first needed.
    """
    from azure.identity.aio import ClientSecretCredential, DefaultAzureCredential

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


async def open_arm(
    settings: Settings, breakers: Breakers, stack: AsyncExitStack
) -> tuple[httpx.AsyncClient, AsyncTokenCredential]:
    """The resilient ARM HTTP client and the credential of the settings; both close with
    ``stack``."""
    verify: ssl.SSLContext | bool = True
    if settings.arm_ca_bundle is not None:
        verify = ssl.create_default_context(cafile=str(settings.arm_ca_bundle))
    http = await stack.enter_async_context(
        resilient_client(breakers=breakers, verify=verify, client_cert=settings.arm_client_cert)
    )
    token = credential(settings)
    stack.push_async_callback(token.close)
    return http, token


async def open_client(
    settings: Settings, breakers: Breakers, stack: AsyncExitStack
) -> SentinelClient:
    """The ARM client of the settings; its HTTP client and credential close with ``stack``."""
    http, token = await open_arm(settings, breakers, stack)
    return SentinelClient(http, token, base_url=settings.arm_endpoint)


async def open_poller(
    settings: Settings,
    writer: IngestWriter,
    store: Store,
    breakers: Breakers,
    stack: AsyncExitStack,
) -> SentinelPoller:
    """A poller over the configured workspaces; its client and credential close with ``stack``."""
    client = await open_client(settings, breakers, stack)
    return SentinelPoller(client, workspaces(settings), writer, store)


async def polling(
    settings: Settings,
    writer: IngestWriter,
    store: Store,
    breakers: Breakers,
    metrics: Metrics | None = None,
    client: SentinelClient | None = None,
) -> AsyncIterator[None]:
    """Poll Sentinel, and reconcile it nightly, on one replica at a time while Warden runs.

    An aiohttp cleanup context. The reconcile (``WARDEN_SENTINEL_RECONCILE_ENABLED``) checks
    every ``RECONCILE_CHECK_SECONDS`` whether a run is due, and resumes one left unfinished.
    ``client`` is the app's Sentinel client (one is opened for the context without it).
    """
    async with AsyncExitStack() as stack:
        if client is None:
            client = await open_client(settings, breakers, stack)
        poller = SentinelPoller(client, workspaces(settings), writer, store, metrics=metrics)

        async def round_() -> None:
            await poller.poll_once()

        every = settings.sentinel_poll_seconds
        tasks = [
            asyncio.create_task(
                run_as_leader(store, "sentinel-poller", round_, retry_seconds=every)
            )
        ]
        if settings.sentinel_reconcile_enabled:
            reconciler = SentinelReconciler(
                client, workspaces(settings), writer, store, metrics=metrics
            )

            async def reconcile() -> None:
                await reconciler.run_if_due(settings.sentinel_reconcile_time)

            check = RECONCILE_CHECK_SECONDS
            tasks.append(
                asyncio.create_task(
                    run_as_leader(store, LEADER_NAME, reconcile, retry_seconds=check)
                )
            )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def reconcile_now(
    settings: Settings,
    store: Store,
    *,
    restart: bool = False,
    progress: Progress | None = None,
) -> ReconcileRun:
    """One reconcile run now, outside the server (the command line); the finished run.

    Resumes an unfinished run unless ``restart``. ``store`` is the caller's (opened with
    its cipher, closed by the caller); cards follow from the running Warden's outbox.
    Raises ``SettingsError`` without workspaces, ``ReconcileBusy`` while another replica
    reconciles, and what ``SentinelReconciler.run`` raises.
    """
    if not settings.sentinel_workspaces:
        raise SettingsError(
            "WARDEN_SENTINEL_WORKSPACES: no Sentinel workspace is configured "
            "(subscription/resourceGroup/workspace, comma-separated)"
        )
    chosen = workspaces(settings)
    writer = IngestWriter(store, on_commit=lambda: None)
    async with AsyncExitStack() as stack:
        if settings.auto_migrate:
            await store.upgrade()
        await writer.start()
        stack.push_async_callback(writer.stop)
        client = await open_client(settings, Breakers(), stack)
        async with leadership(store, LEADER_NAME) as leading:
            if not leading:
                raise ReconcileBusy("another Warden replica is reconciling Sentinel right now")
            reconciler = SentinelReconciler(client, chosen, writer, store)
            return await reconciler.run(restart=restart, progress=progress)
