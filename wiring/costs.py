"""The cost exports ingest's part of the composition: blob storage in, the store out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta

from sqlalchemy.exc import SQLAlchemyError

from connectors.costexports.client import ExportsClient
from connectors.costexports.ingest import (
    LEADER_NAME,
    CostIngest,
    IngestBusy,
    IngestProgress,
    Progress,
)
from connectors.sentinel.setup import credential
from core.errors import SettingsError, WardenError
from core.leader import leadership
from core.settings import Settings
from core.store.store import Store

log = logging.getLogger(__name__)


def open_client(settings: Settings) -> ExportsClient:
    """The export container's client; ``SettingsError`` when no storage account is set."""
    costs = settings.costs
    if not costs.enabled:
        raise SettingsError(
            "cost exports are not configured: set WARDEN_COSTS__CONNECTION_STRING or "
            "WARDEN_COSTS__ACCOUNT_URL"
        )
    token = None if costs.connection_string.get_secret_value() else credential(settings)
    return ExportsClient.from_settings(costs, token)


async def ingest_now(
    settings: Settings,
    store: Store,
    *,
    resume: bool = False,
    progress: Progress | None = None,
) -> IngestProgress:
    """One ingest now (the command line, or the nightly job); what it did.

    ``store`` is the caller's. Raises ``IngestBusy`` while another replica ingests, and what
    ``CostIngest.run`` raises.
    """
    client = open_client(settings)
    try:
        if settings.auto_migrate:
            await store.upgrade()
        async with leadership(store, LEADER_NAME) as leading:
            if not leading:
                raise IngestBusy("another Warden replica is ingesting cost exports right now")
            return await CostIngest(client, store, settings.costs).run(
                resume=resume, progress=progress
            )
    finally:
        await client.close()


def seconds_until(now: datetime, at: time) -> float:
    """Seconds from ``now`` to the next UTC time of day ``at`` (a full day when it is now)."""
    slot = datetime.combine(now.astimezone(UTC).date(), at.replace(tzinfo=UTC))
    if slot <= now:
        slot += timedelta(days=1)
    return (slot - now).total_seconds()


@contextlib.asynccontextmanager
async def nightly(settings: Settings, store: Store) -> AsyncIterator[None]:
    """Ingest every night at ``WARDEN_COSTS__NIGHTLY_AT`` (UTC) while Warden runs; a failed
    night is logged and resumed the next night. An aiohttp cleanup context's body."""
    at = settings.costs.nightly_at
    assert at is not None

    async def loop() -> None:
        while True:
            await asyncio.sleep(seconds_until(datetime.now(UTC), at))
            try:
                done = await ingest_now(settings, store, resume=True)
                log.info("cost exports: %d partition(s) ingested", done.ingested)
            except (WardenError, SQLAlchemyError, OSError) as exc:
                log.warning("cost exports: the nightly ingest stopped: %s", exc)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
