"""Evidence-library change detection: Graph delta rounds on the evidence records.

``ChangeWatch.run_once`` reads, for each watched source (the *Evidence* library, the
*Evidence Requests* list, the *Audit Log* list), what changed since its delta link (kept as
a checkpoint). Each change is classified (``made_by_warden``): the eTag Warden already
accounted for, or Warden's own application id as ``lastModifiedBy.application``, means
Warden made it; anything else was made outside Warden, is described against Warden's record
(``graph.delta_describe``) and recorded (``core.store.delta.record_round``): an audit entry
each, and a card each for the auditors' channel, once per change however often it is read
(keyed by source, item id and the item's eTag).

The first round of a source only learns what is there (nothing to compare with yet). A link
Graph no longer honours (410 Gone) starts a full resync: every item is compared with the
eTag Warden last accounted for, the items Warden knew that are gone count as deleted, and
what differs goes to the channel as one summary card, not one card per item.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum

from core.errors import DeliveryError, Outcome
from core.outside_changes import OutsideChange
from core.store import checkpoints
from core.store import delta as delta_store
from core.store.store import Store
from graph.audit_mirror import AUDIT_LOG
from graph.audit_verify import EvidenceLibrary, SharePointAccess
from graph.delta import Change, DeltaExpired, DeltaRound, drive_delta, list_delta
from graph.delta_describe import (
    SOMEONE,
    describe_audit_item,
    describe_file,
    describe_request_item,
)
from graph.sharepoint import ListRef, list_by_name, site_by_path

log = logging.getLogger(__name__)

LEADER_NAME = "evidence-delta"
"""The leadership name: one replica at a time reads the evidence records' deltas."""

REQUESTS_LIST = "Evidence Requests"


class Source(StrEnum):
    """A watched evidence record collection."""

    EVIDENCE = "evidence"
    REQUESTS = "requests"
    AUDIT = "audit"


def made_by_warden(change: Change, accounted: str | None, app_id: str) -> bool:
    """Whether Warden made ``change``: its eTag is the one Warden accounted for, or Warden's
    application made it. A removal is never Warden's (Warden deletes no evidence record)."""
    if change.deleted:
        return False
    if accounted is not None and change.etag == accounted:
        return True
    return bool(app_id) and change.app_id is not None and change.app_id.lower() == app_id.lower()


@dataclass
class WatchReport:
    """What one run found: changes made outside Warden per source, and resynced sources."""

    changes: dict[str, list[OutsideChange]] = field(default_factory=dict)
    resynced: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many changes made outside Warden were found."""
        return sum(len(found) for found in self.changes.values())


class ChangeWatch:
    """Reads the deltas of the evidence records and records what Warden did not do."""

    def __init__(
        self,
        store: Store,
        access: SharePointAccess,
        *,
        app_id: str,
        channel: str | None,
        page_size: int = 200,
    ) -> None:
        """Watch ``access``'s site; ``app_id`` is Warden's Graph client id; cards go to
        ``channel`` (the auditors' conversation id; None: audit entries only)."""
        self._store = store
        self._access = access
        self._app_id = app_id
        self._channel = channel
        self._page_size = page_size
        self._library: EvidenceLibrary | None = None
        self._lists: dict[Source, ListRef] = {}

    async def run_once(self) -> WatchReport:
        """One delta round of every source."""
        report = WatchReport()
        for source in Source:
            found = await self._round(source)
            report.changes[source.value] = found.changes
            if found.summary:
                report.resynced.append(source.value)
        return report

    async def _round(self, source: Source) -> delta_store.Round:
        """Read, classify and record one source's changes."""
        link = await checkpoints.load(self._store, delta_store.checkpoint_name(source))
        accounted = await delta_store.known(self._store, source)
        resync = False
        try:
            delta = await self._read(source, link)
        except DeltaExpired:
            if link is None:
                raise
            log.warning("delta link of %s expired: resync", source.value)
            delta, resync = await self._read(source, None), True
        found = delta_store.Round(source.value, delta.link, summary=resync)
        baseline = link is None  # the first round: nothing to compare with yet
        changed = [c for c in delta.changes if not c.folder]
        if resync:
            present = {c.item_id for c in delta.changes}
            changed += [Change(i, deleted=True, who=SOMEONE) for i in accounted if i not in present]
        for change in changed:
            if change.deleted and change.item_id not in accounted:
                continue
            found.seen[change.item_id] = None if change.deleted else change.etag
            before = accounted.get(change.item_id)
            if baseline or made_by_warden(change, before, self._app_id):
                continue
            found.changes.append(await self._describe(source, change))
            version = delta_store.alert_version(change.etag, change.deleted, before)
            found.versions[change.item_id] = version
        found.changes = await delta_store.record_round(self._store, found, self._channel)
        return found

    async def _read(self, source: Source, link: str | None) -> DeltaRound:
        """One delta round of ``source`` from ``link`` (None: everything)."""
        graph, size = self._access.graph, self._page_size
        if source is Source.EVIDENCE:
            library = await self._evidence()
            return await drive_delta(graph, library.drive_id, link, page_size=size)
        return await list_delta(graph, await self._list(source), link, page_size=size)

    async def _describe(self, source: Source, change: Change) -> OutsideChange:
        """What ``change`` did to ``source``, against Warden's record."""
        if source is Source.EVIDENCE:
            return await describe_file(self._store, await self._evidence(), change)
        if source is Source.REQUESTS:
            return await describe_request_item(self._store, change)
        return await describe_audit_item(self._store, change)

    async def _evidence(self) -> EvidenceLibrary:
        """The *Evidence* library (looked up once)."""
        if self._library is None:
            self._library = await self._access.library()
        return self._library

    async def _list(self, source: Source) -> ListRef:
        """The list of ``source`` (looked up once); RETRY while it is not provisioned."""
        if source not in self._lists:
            site = await site_by_path(self._access.graph, self._access.site)
            name = AUDIT_LOG if source is Source.AUDIT else REQUESTS_LIST
            found = await list_by_name(self._access.graph, site.id or "", name)
            if found is None or not found.id:
                raise DeliveryError(f"the site has no {name} list", outcome=Outcome.RETRY)
            self._lists[source] = ListRef(site.id or "", found.id)
        return self._lists[source]
