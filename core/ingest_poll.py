"""One polling round's ingest, shared by the incident pollers (Sentinel, Defender XDR).

The round lists the incidents changed since the checkpoint minus an overlap (a clock skew or
a late write is not missed), stores each through the ingest path the webhooks use (a version
already stored changes nothing), and moves the checkpoint only after they are committed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone

from core.ingest import IngestWriter
from core.models import Incident
from core.store import checkpoints
from core.store.store import Store

IncidentLister = Callable[[datetime], AsyncIterator[Incident]]
"""The incidents changed since a moment, as a vendor's client lists them."""


async def ingest_since_checkpoint(
    store: Store,
    writer: IngestWriter,
    checkpoint: str,
    changed_since: IncidentLister,
    *,
    overlap: timedelta,
    first_lookback: timedelta,
) -> int:
    """Submit every incident ``changed_since`` lists from the checkpoint ``checkpoint`` minus
    ``overlap`` (``first_lookback`` ago when there is none yet), then move the checkpoint to
    the newest ``last_modified`` read; how many incident versions were read."""
    saved = await checkpoints.load(store, checkpoint)
    since = (
        datetime.fromisoformat(saved) - overlap
        if saved
        else datetime.now(timezone.utc) - first_lookback
    )
    newest: datetime | None = None
    read = 0
    async for incident in changed_since(since):
        await writer.submit(incident)
        read += 1
        if newest is None or incident.last_modified > newest:
            newest = incident.last_modified
    if newest is not None:
        await checkpoints.save(store, checkpoint, newest.isoformat())
    return read
