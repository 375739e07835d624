"""Pull as well as push: poll Sentinel for incidents modified since the last checkpoint.

Each round lists, per workspace, the incidents modified since the checkpoint minus an
overlap (so a clock skew or a late write is not missed), stores each through the same
ingest path as the webhook — a version already stored changes nothing, so webhook and poll
together never post a card twice — and moves the checkpoint only after they are committed.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from connectors.sentinel.client import SentinelClient, Workspace
from core.errors import DeliveryError
from core.ingest import IngestWriter
from core.ingest_poll import ingest_since_checkpoint
from core.metrics import Metrics
from core.store.store import Store

log = logging.getLogger(__name__)


def checkpoint_name(workspace: Workspace) -> str:
    """The checkpoint's name for one workspace."""
    return f"sentinel.poll:{workspace}".lower()


class SentinelPoller:
    """One polling round over every configured workspace."""

    def __init__(
        self,
        client: SentinelClient,
        workspaces: list[Workspace],
        writer: IngestWriter,
        store: Store,
        *,
        overlap: timedelta = timedelta(minutes=5),
        first_lookback: timedelta = timedelta(days=1),
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._client = client
        self._workspaces = workspaces
        self._writer = writer
        self._store = store
        self._overlap = overlap
        self._first_lookback = first_lookback

    async def poll_once(self) -> int:
        """Poll every workspace once; returns how many incident versions were read."""
        read = 0
        for workspace in self._workspaces:
            try:
                read += await self._poll(workspace)
            except DeliveryError as exc:  # the checkpoint stays; the next round tries again
                log.warning("sentinel poll failed: %s", exc)
                continue
            if self._metrics is not None:
                self._metrics.sync_last_success.labels(checkpoint_name(workspace)).set(time.time())
        return read

    async def _poll(self, workspace: Workspace) -> int:
        read = await ingest_since_checkpoint(
            self._store,
            self._writer,
            checkpoint_name(workspace),
            lambda since: self._client.list_incidents(workspace, modified_since=since),
            overlap=self._overlap,
            first_lookback=self._first_lookback,
        )
        log.info("sentinel poll of a workspace read %s incident versions", read)
        return read
