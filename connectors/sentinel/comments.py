"""Sentinel comments relayed to the incident cards' threads (the other way round from triage).

Sentinel does not announce comments (adding one leaves the incident's etag and modification
time as they are), so the relay reads them: every round, for each incident whose card changed
in the last ``WINDOW_DAYS`` and that is still open, it lists the comments and relays those
Warden does not know yet, written after the incident's first card was posted. Comments
Warden wrote itself (triage attributions, replies typed in Teams) are known from the moment
they are written, so they never come back (no echo).
"""

from __future__ import annotations

import logging
import time

from connectors.sentinel.client import SentinelClient
from connectors.sentinel.triage import locate
from core.errors import DeliveryError
from core.models import IncidentStatus
from core.store import comments as comment_store
from core.store.store import Store

log = logging.getLogger(__name__)

WINDOW_DAYS = 7
"""Incidents whose cards changed within this many days have their comments relayed."""

SLACK_SECONDS = 60.0
"""Comments this much older than the first card are still relayed (clocks differ)."""


class CommentRelay:
    """Reads Sentinel comments of the incidents on cards and queues their thread replies."""

    def __init__(self, client: SentinelClient, store: Store) -> None:
        self._client = client
        self._store = store

    async def relay_once(self) -> int:
        """One round over the incidents on cards; how many replies were queued."""
        since = time.time() - WINDOW_DAYS * 86400
        queued = 0
        for key, first_posted in (await comment_store.shown_since(self._store, since)).items():
            incident = await self._store.incident(key)
            if incident is None or incident.status is IncidentStatus.CLOSED:
                continue
            try:
                queued += await self._relay(key, first_posted - SLACK_SECONDS)
            except (DeliveryError, ValueError) as exc:
                log.warning("comments of an incident not relayed this round: %s", exc)
        return queued

    async def _relay(self, key: str, after: float) -> int:
        workspace, name = locate(key)
        known = await comment_store.known(self._store, key)
        fresh = [
            comment_store.SourceComment(c.name, c.message, c.author, c.created)
            for c in await self._client.list_comments(workspace, name)
            if c.name.lower() not in known and (c.created is None or c.created.timestamp() >= after)
        ]
        return await comment_store.relay(self._store, key, fresh) if fresh else 0
