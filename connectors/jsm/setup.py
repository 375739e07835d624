"""JSM's part of the composition: its outbox handlers, its webhook, its poller.

``app.py`` wires what this builds; nothing happens at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from connectors.jsm.sync import CreateRequestDelivery, JsmConnection, JsmOutcomeDelivery, JsmPoller
from core.breaker import Breakers
from core.leader import leading
from core.metrics import Metrics
from core.settings.jsm import JsmSettings
from core.store.links import ITSM_CREATE_JOB, ITSM_OUTCOME_JOB
from core.store.store import Store
from core.worker import Handler


def connect(settings: JsmSettings, breakers: Breakers) -> JsmConnection | None:
    """The connection ``settings`` describe; None when JSM is not configured."""
    return JsmConnection.from_settings(settings, breakers) if settings.enabled else None


def handlers(connection: JsmConnection, store: Store) -> dict[str, Handler]:
    """The outbox handlers that write to JSM."""
    return {
        ITSM_OUTCOME_JOB: JsmOutcomeDelivery(connection, store),
        ITSM_CREATE_JOB: CreateRequestDelivery(connection, store),
    }


async def polling(
    connection: JsmConnection,
    store: Store,
    settings: JsmSettings,
    *,
    on_change: Callable[[], None],
    metrics: Metrics | None = None,
) -> AsyncIterator[None]:
    """Poll JSM on one replica at a time while Warden runs (an aiohttp cleanup context);
    closes the connection at the end."""
    poller = JsmPoller(connection.client, store, metrics=metrics, on_change=on_change)

    async def round_() -> None:
        await poller.poll_once()

    try:
        async with leading(store, "jsm-poller", round_, every=settings.poll_seconds):
            yield
    finally:
        await connection.aclose()
