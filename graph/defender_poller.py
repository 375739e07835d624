"""Poll Defender XDR for incidents updated since the last checkpoint (Graph security).

Each round lists the incidents whose ``lastUpdateDateTime`` is at or after the checkpoint
minus an overlap (a late write or a clock skew is not missed), stores each through the same
ingest path as Sentinel's — a version already stored changes nothing, and an incident Sentinel
reports too joins its card — and moves the checkpoint only after they are committed. One
replica polls at a time (``core.leader``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta

from core.errors import DeliveryError, InvalidPayload
from core.ingest import IngestWriter
from core.ingest_poll import ingest_since_checkpoint
from core.leader import leading
from core.metrics import Metrics
from core.settings.defender import DefenderSettings
from core.store.store import Store
from graph.security import DefenderClient

log = logging.getLogger(__name__)

CHECKPOINT = "defender.poll"
LEADER = "defender-poller"


class DefenderPoller:
    """One polling round over Defender XDR's incidents."""

    def __init__(
        self,
        client: DefenderClient,
        writer: IngestWriter,
        store: Store,
        *,
        overlap: timedelta = timedelta(minutes=5),
        first_lookback: timedelta = timedelta(days=1),
        metrics: Metrics | None = None,
    ) -> None:
        self._client = client
        self._writer = writer
        self._store = store
        self._overlap = overlap
        self._first_lookback = first_lookback
        self._metrics = metrics

    async def poll_once(self) -> int:
        """Poll once; how many incident versions were read (0 when Graph failed)."""
        try:
            read = await self._poll()
        except (DeliveryError, InvalidPayload) as exc:  # the checkpoint stays; next round
            log.warning("defender poll failed: %s", exc)
            return 0
        if self._metrics is not None:
            self._metrics.sync_last_success.labels(CHECKPOINT).set(time.time())
        return read

    async def _poll(self) -> int:
        read = await ingest_since_checkpoint(
            self._store,
            self._writer,
            CHECKPOINT,
            lambda since: self._client.list_incidents(updated_since=since),
            overlap=self._overlap,
            first_lookback=self._first_lookback,
        )
        log.info("defender poll read %s incident versions", read)
        return read


async def polling(
    settings: DefenderSettings,
    client: DefenderClient,
    writer: IngestWriter,
    store: Store,
    metrics: Metrics | None = None,
) -> AsyncIterator[None]:
    """Poll Defender XDR on one replica at a time while Warden runs (a cleanup context)."""
    poller = DefenderPoller(
        client,
        writer,
        store,
        overlap=timedelta(seconds=settings.poll_overlap_seconds),
        first_lookback=timedelta(hours=settings.first_lookback_hours),
        metrics=metrics,
    )

    async def round_() -> None:
        await poller.poll_once()

    async with leading(store, LEADER, round_, every=settings.poll_seconds):
        yield
