"""The audit chain mirrored to SharePoint: one *Audit Log* list item per entry.

``AuditMirror`` is the outbox handler of ``audit.mirror`` jobs (``core.store.evidence_audit``). It
reads the entry by ``seq`` from the store and writes it as one list item: the entry's fields
in their own columns (Seq, AtUtc, Actor, Action, RequestId, RequirementId, PrevHash, Hash)
for people, and the entry's canonical JSON (RFC 8785, ``hash`` included) in the multi-line
``Details`` column, from which ``audit verify`` recomputes the chain exactly as SharePoint
holds it. Then it marks the entry mirrored in the store.

A retry after a crash between the Graph write and ``mark_mirrored`` finds the item already
there (``$filter`` on the indexed Seq column) and does not create it twice. Graph down or
throttled surfaces as ``DeliveryError`` (RETRY), and the outbox tries again; the jobs share
one ordering key, so entries still reach the list in chain order.

Without ``WARDEN_SHAREPOINT_SITE`` nothing can be mirrored yet: ``wait_for_sharepoint``
keeps the jobs pending (deferred, no attempt counted) instead of letting them be dropped.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from msgraph.graph_service_client import GraphServiceClient

from core.audit_chain import AuditEntry, canonical_json
from core.errors import DeliveryError, Outcome
from core.store.evidence_audit import audit_entries, mark_mirrored
from core.store.outbox import Job
from core.store.store import Store
from graph.sharepoint import (
    ItemFields,
    ListRef,
    SitePath,
    create_item,
    list_by_name,
    read_items,
    site_by_path,
)
from graph.unconfigured import UNCONFIGURED_WAIT, wait_for_sharepoint

__all__ = ["UNCONFIGURED_WAIT", "AuditMirror", "wait_for_sharepoint"]

log = logging.getLogger(__name__)

AUDIT_LOG = "Audit Log"
"""The display name of the list the chain is mirrored to (``graph.provision.SCHEMA``)."""

BODY_COLUMN = "Details"
"""The multi-line text column holding the entry's canonical JSON."""


def entry_fields(entry: AuditEntry) -> dict[str, Any]:
    """The list item fields of ``entry`` (internal column names)."""
    return {
        "Title": f"Seq {entry.seq}: {entry.action.value}",
        "Seq": entry.seq,
        "AtUtc": entry.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Actor": entry.actor,
        "Action": entry.action.value,
        "RequestId": entry.request_id,
        "RequirementId": entry.requirement_id,
        "PrevHash": entry.prev_hash,
        "Hash": entry.hash,
        BODY_COLUMN: canonical_json(entry.to_json()).decode("utf-8"),
    }


def column_mismatch(entry: AuditEntry, fields: dict[str, Any]) -> str | None:
    """The first column of an item that disagrees with its body ``entry``, or None."""
    for name, wanted in entry_fields(entry).items():
        if name == BODY_COLUMN:
            continue
        found = fields.get(name)
        if not _same_value(name, wanted, found):
            return f"its {name} column says {found!r}, its body says {wanted!r}"
    return None


def item_body(item: ItemFields) -> Any:
    """The JSON an item's body column holds (None when there is none or it is not JSON)."""
    raw = item.fields.get(BODY_COLUMN)
    if not isinstance(raw, str):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def item_seq(item: ItemFields) -> int | None:
    """The Seq of an item: from its body, else its column (None when neither has one)."""
    body = item_body(item)
    value = body.get("seq") if isinstance(body, dict) else item.fields.get("Seq")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return None


async def audit_log_ref(graph: GraphServiceClient, site: SitePath) -> ListRef:
    """The *Audit Log* list of ``site``; DeliveryError (RETRY) while it is not provisioned."""
    found = await site_by_path(graph, site)
    site_id = found.id or ""
    listed = await list_by_name(graph, site_id, AUDIT_LOG)
    if listed is None or not listed.id:
        raise DeliveryError(
            f"SharePoint site {site} has no {AUDIT_LOG} list: run `python app.py provision`",
            outcome=Outcome.RETRY,
        )
    return ListRef(site_id, listed.id)


class AuditMirror:
    """The ``audit.mirror`` outbox handler: one entry → one Audit Log item, exactly once."""

    def __init__(self, store: Store, graph: GraphServiceClient, site: SitePath) -> None:
        """Mirror ``store``'s chain to the Audit Log list of ``site`` through ``graph``."""
        self._store = store
        self._graph = graph
        self._site = site
        self._ref: ListRef | None = None

    async def __call__(self, job: Job) -> None:
        """Write the job's entry to the list (unless there already), then mark it mirrored."""
        seq = int(job.payload["seq"])
        found = await audit_entries(self._store, after_seq=seq - 1, limit=1)
        if not found or found[0].seq != seq:
            raise DeliveryError(f"audit entry {seq} is not in the store", outcome=Outcome.FAIL)
        entry = found[0]
        if self._ref is None:
            self._ref = await audit_log_ref(self._graph, self._site)
        item = await self._existing(self._ref, seq)
        if item is None:
            item = await create_item(self._graph, self._ref, entry_fields(entry))
        elif item.fields.get("Hash") != entry.hash:
            log.warning("Audit Log item %s (seq %s) differs from the store", item.id, seq)
        await mark_mirrored(self._store, seq, item.id)

    async def _existing(self, ref: ListRef, seq: int) -> ItemFields | None:
        """The item already written for ``seq`` (a retried job), or None."""
        async for item in read_items(self._graph, ref, page_size=2, filter_=f"fields/Seq eq {seq}"):
            return item
        return None


def _same_value(name: str, wanted: Any, found: Any) -> bool:
    """Compare a column's value the way SharePoint returns it (numbers, whole seconds)."""
    if isinstance(wanted, int) and isinstance(found, int | float) and not isinstance(found, bool):
        return float(found) == float(wanted)
    if name == "AtUtc" and isinstance(found, str | datetime):
        return _instant(found) == _instant(str(wanted))
    return bool(found == wanted)


def _instant(value: str | datetime) -> datetime | None:
    """An RFC 3339 time (text, or as the SDK parsed it) in UTC to the second, or None."""
    parsed = value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(parsed, datetime) or parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC).replace(microsecond=0)
