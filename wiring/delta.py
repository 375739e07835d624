"""Composition of evidence-library change detection: the leader-run delta watch.

Called by ``app.create_app`` when SharePoint is configured and ``WARDEN_DELTA__POLL_SECONDS``
is above 0: one replica at a time runs ``graph.delta_watch.ChangeWatch`` every interval, as
Warden's Graph identity (``AZURE_CLIENT_ID``, the application id SharePoint reports for
Warden's own writes).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import httpx

from connectors.registry import is_on
from connectors.sentinel.connection import tls_verify
from connectors.sentinel.setup import credential as sentinel_credential
from core.breaker import Breakers
from core.errors import WardenError
from core.leader import leading
from core.settings import Settings
from core.store.store import Store

log = logging.getLogger(__name__)


def watching_on(settings: Settings) -> bool:
    """Whether the change watch runs: SharePoint configured and an interval above 0."""
    return is_on(settings, "sharepoint") and settings.delta.poll_seconds > 0


def watching(
    settings: Settings, store: Store, breakers: Breakers, *, on_change: Callable[[], None]
) -> AsyncIterator[None]:
    """The cleanup context running the watch (``on_change`` wakes the outbox worker)."""
    return _watching(settings, store, breakers, on_change)


async def _watching(
    settings: Settings, store: Store, breakers: Breakers, on_change: Callable[[], None]
) -> AsyncIterator[None]:
    """Run delta rounds on one replica at a time for the application's lifetime."""
    from graph.audit_verify import sharepoint_access  # Graph is imported where wired (ADR 9)
    from graph.delta_watch import LEADER_NAME, ChangeWatch

    credential = sentinel_credential(settings)
    try:
        verify = tls_verify(settings)
        async with sharepoint_access(settings, credential, breakers=breakers, verify=verify) as sp:
            watch = ChangeWatch(
                store,
                sp,
                app_id=settings.azure_client_id,
                channel=settings.auditors_channel,
                page_size=settings.delta.page_size,
            )

            async def round_() -> None:
                try:
                    report = await watch.run_once()
                except (WardenError, httpx.HTTPError) as exc:  # the next round tries again
                    log.warning("evidence delta round failed: %s", type(exc).__name__)
                    return
                if report.count:
                    on_change()

            async with leading(store, LEADER_NAME, round_, every=settings.delta.poll_seconds):
                yield
    finally:
        await credential.close()
