"""The CMDB sync's part of the composition: Resource Graph in, the store and ServiceNow out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

from connectors.resourcegraph.client import ResourceGraphClient
from connectors.resourcegraph.cmdb_sync import (
    LEADER_NAME,
    CmdbRun,
    CmdbSync,
    CmdbSyncBusy,
    Progress,
)
from connectors.resourcegraph.nightly import CmdbNightly
from connectors.sentinel.setup import open_arm
from connectors.servicenow.auth import authenticator
from connectors.servicenow.cmdb import CmdbUpsert
from connectors.servicenow.sync import ServiceNowConnection
from connectors.servicenow.table import TableApi
from core.breaker import Breakers
from core.errors import SettingsError
from core.leader import leadership, leading
from core.metrics import Metrics
from core.settings import Settings
from core.store import deployments as deployments_store
from core.store.store import Store


async def open_sync(settings: Settings, store: Store, stack: AsyncExitStack) -> CmdbSync:
    """The sync ``settings`` describe; its HTTP clients and credential close with ``stack``.

    ``SettingsError`` when the ServiceNow upsert is on but ServiceNow is not configured.
    """
    breakers = Breakers()
    http, token = await open_arm(settings, breakers, stack)
    client = ResourceGraphClient(http, token, base_url=settings.arm_endpoint)
    sink = None
    if settings.cmdb.servicenow_sync:
        snow = settings.servicenow
        if not snow.enabled:
            raise SettingsError(
                "WARDEN_CMDB__SERVICENOW_SYNC is on but ServiceNow is not configured "
                "(set WARDEN_SERVICENOW__INSTANCE_URL and its credentials)"
            )
        connection = ServiceNowConnection.from_settings(snow, breakers)
        stack.push_async_callback(connection.aclose)
        auth = authenticator(connection.http, snow)
        api = TableApi(connection.http, str(snow.instance_url), auth)
        sink = CmdbUpsert(api)
    return CmdbSync(client, store, settings.cmdb, sink=sink)


def nightly_sync(settings: Settings, store: Store, metrics: Metrics | None) -> CmdbNightly:
    """The nightly sync ``settings.cmdb`` describes; each run opens (and closes) its clients."""

    async def open_one() -> tuple[CmdbSync, Callable[[], Awaitable[None]]]:
        stack = AsyncExitStack()
        try:
            return await open_sync(settings, store, stack), stack.aclose
        except BaseException:
            await stack.aclose()
            raise

    cmdb = settings.cmdb
    return CmdbNightly(
        open_one, store, cmdb.nightly_time, retry_seconds=cmdb.retry_seconds, metrics=metrics
    )


async def nightly(store: Store, sync: CmdbNightly, every: float) -> AsyncIterator[None]:
    """An aiohttp cleanup context: the nightly sync's checks every ``every`` seconds, on
    the replica that leads ``cmdb-sync`` (the command line's ``cmdb sync`` leads it too)."""
    async with leading(store, LEADER_NAME, sync.round, every=every):
        yield


async def sync_now(
    settings: Settings,
    store: Store,
    *,
    resume: bool = False,
    progress: Progress | None = None,
) -> CmdbRun:
    """One sync run now (the command line, or the nightly job); the finished run. With
    deployments on, a read of each resource group's deployments is queued in the outbox.

    Resumes a stopped run with ``resume``. ``store`` is the caller's. Raises
    ``CmdbSyncBusy`` while another replica syncs, and what ``CmdbSync.run`` raises.
    """
    async with AsyncExitStack() as stack:
        if settings.auto_migrate:
            await store.upgrade()
        sync = await open_sync(settings, store, stack)
        async with leadership(store, LEADER_NAME) as leading:
            if not leading:
                raise CmdbSyncBusy("another Warden replica is syncing the CMDB right now")
            run = await sync.run(resume=resume, progress=progress)
    if settings.deployments.enabled and settings.sentinel_connected:
        groups = await deployments_store.cmdb_groups(store)
        await deployments_store.ask_groups(store, groups)
    return run
