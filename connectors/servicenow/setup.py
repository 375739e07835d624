"""ServiceNow's part of the composition: its outbox handlers, its webhook parser, its poller.

``app.py`` wires what this builds; nothing happens at import time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

from connectors.servicenow.evidence_sync import EvidenceOutcomeDelivery
from connectors.servicenow.mapping import record_from_webhook
from connectors.servicenow.sync import (
    CreateChangeDelivery,
    ItsmOutcomeDelivery,
    ServiceNowConnection,
    ServiceNowPoller,
)
from core.breaker import Breakers
from core.itsm import ItsmRecord
from core.leader import leading
from core.metrics import Metrics
from core.settings.servicenow import ServiceNowSettings
from core.store.evidence_outcomes import ITSM_EVIDENCE_JOB
from core.store.links import ITSM_CREATE_JOB, ITSM_OUTCOME_JOB
from core.store.store import Store
from core.worker import Handler

log = logging.getLogger(__name__)


def connect(settings: ServiceNowSettings, breakers: Breakers) -> ServiceNowConnection | None:
    """The connection ``settings`` describe; None when ServiceNow is not configured."""
    return ServiceNowConnection.from_settings(settings, breakers) if settings.enabled else None


def handlers(connection: ServiceNowConnection, store: Store) -> dict[str, Handler]:
    """The outbox handlers that write to ServiceNow."""
    return {
        ITSM_OUTCOME_JOB: ItsmOutcomeDelivery(connection, store),
        ITSM_CREATE_JOB: CreateChangeDelivery(connection, store),
        ITSM_EVIDENCE_JOB: EvidenceOutcomeDelivery(connection, store),
    }


def webhook_parser(settings: ServiceNowSettings) -> Callable[[Any], ItsmRecord]:
    """What reads a business rule's message into a record of the configured instance."""
    return partial(record_from_webhook, instance_url=str(settings.instance_url))


async def polling(
    connection: ServiceNowConnection,
    store: Store,
    settings: ServiceNowSettings,
    *,
    on_change: Callable[[], None],
    metrics: Metrics | None = None,
) -> AsyncIterator[None]:
    """Poll ServiceNow on one replica at a time while Warden runs (an aiohttp cleanup context);
    closes the connection at the end."""
    poller = ServiceNowPoller(connection.client, store, metrics=metrics, on_change=on_change)

    async def round_() -> None:
        await poller.poll_once()

    try:
        async with leading(store, "servicenow-poller", round_, every=settings.poll_seconds):
            yield
    finally:
        await connection.aclose()
