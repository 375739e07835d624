"""What an out-of-band change did, compared with Warden's own record of the item.

``describe`` turns a delta ``Change`` Warden did not make into an ``OutsideChange``:

* an *Evidence* file: its bytes are downloaded and hashed (``EvidenceLibrary.digest``, as
  ``audit verify`` does) and compared with the SHA-256 Warden filed; same bytes means its
  columns were edited (and a Sha256 column that now says otherwise is named);
* an *Evidence Requests* item: its columns are compared with what Warden writes for the
  request (``graph.evidence_sync.request_fields``);
* an *Audit Log* item: its body must still hash to its own hash, its columns must match
  the body and its hash must be the one Warden's store holds (``audit_verify.item_finding``);
  a deleted one is named by the entry Warden mirrored there.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from core.audit_chain import AuditEntry, entry_hash
from core.errors import DeliveryError
from core.outside_changes import ChangeKind, OutsideChange, RecordKind
from core.store import delta as delta_store
from core.store import evidence as evidence_store
from core.store.store import Store
from graph.audit_mirror import item_body
from graph.audit_verify import EvidenceLibrary, item_finding
from graph.delta import Change
from graph.evidence_sync import request_fields
from graph.sharepoint import ItemFields

SOMEONE = "someone (SharePoint did not say who)"
"""Who made a change that a resync found (a removal carries no author)."""


async def describe_file(store: Store, library: EvidenceLibrary, change: Change) -> OutsideChange:
    """An *Evidence* library file changed, added or deleted outside Warden."""
    filed = await delta_store.filed_file(store, change.item_id)
    base: dict[str, Any] = {
        "record": RecordKind.EVIDENCE_FILE,
        "item_id": change.item_id,
        "name": change.name or (filed.file_name if filed else change.item_id),
        "who": change.who or SOMEONE,
        "web_url": change.web_url,
    }
    if filed is not None:
        base.update(
            expected_hash=filed.sha256,
            request_id=filed.request_id,
            requirement_id=filed.requirement_id,
        )
    if change.deleted:
        return OutsideChange(change=ChangeKind.DELETED, detail="the file is gone", **base)
    try:
        digest = await library.digest(change.item_id)
    except DeliveryError as exc:
        if exc.status != 404:
            raise
        return OutsideChange(change=ChangeKind.DELETED, detail="the file is gone", **base)
    if filed is None:
        detail = "Warden did not file this file"
        return OutsideChange(change=ChangeKind.ADDED, detail=detail, found_hash=digest, **base)
    if digest != filed.sha256:
        detail = f"its bytes hash to {digest}, Warden filed {filed.sha256}"
        return OutsideChange(change=ChangeKind.REPLACED, detail=detail, found_hash=digest, **base)
    column = await library.sha256_column(change.item_id)
    detail = "its content still matches; its columns were edited"
    if column is not None and column != filed.sha256:
        detail += f"; its Sha256 column says {column}"
    return OutsideChange(change=ChangeKind.EDITED, detail=detail, found_hash=digest, **base)


async def describe_request_item(store: Store, change: Change) -> OutsideChange:
    """An *Evidence Requests* item edited or deleted outside Warden."""
    request_id = str(change.fields.get("RequestId") or "")
    record = await evidence_store.record(store, request_id) if request_id else None
    base: dict[str, Any] = {
        "record": RecordKind.REQUEST_ITEM,
        "item_id": change.item_id,
        "name": change.name or request_id or f"item {change.item_id}",
        "who": change.who or SOMEONE,
        "web_url": change.web_url,
    }
    if record is not None:
        base.update(request_id=record.request.id, requirement_id=record.request.requirement_id)
    if change.deleted:
        return OutsideChange(change=ChangeKind.DELETED, detail="the item is gone", **base)
    if record is None:
        detail = "no request of Warden's has this RequestId"
        return OutsideChange(change=ChangeKind.EDITED, detail=detail, **base)
    differing = [
        f"{name} says {change.fields.get(name)!r}, Warden recorded {wanted!r}"
        for name, wanted in request_fields(record).items()
        if not _same(wanted, change.fields.get(name))
    ]
    detail = "; ".join(differing) or "its columns match Warden's record again"
    return OutsideChange(change=ChangeKind.EDITED, detail=detail, **base)


async def describe_audit_item(store: Store, change: Change) -> OutsideChange:
    """An *Audit Log* item edited or deleted outside Warden."""
    mirrored = await delta_store.mirrored_entry(store, change.item_id)
    base: dict[str, Any] = {
        "record": RecordKind.AUDIT_ITEM,
        "item_id": change.item_id,
        "name": f"Seq {mirrored.seq}" if mirrored else change.name or f"item {change.item_id}",
        "who": change.who or SOMEONE,
        "web_url": change.web_url,
    }
    if mirrored is not None:
        base.update(
            expected_hash=mirrored.hash,
            request_id=mirrored.request_id,
            requirement_id=mirrored.requirement_id,
        )
    if change.deleted:
        detail = "the entry is gone from the Audit Log: the chain has a gap"
        return OutsideChange(change=ChangeKind.DELETED, detail=detail, **base)
    return await _audit_edit(store, change, base)


async def _audit_edit(store: Store, change: Change, base: dict[str, Any]) -> OutsideChange:
    """An edited Audit Log item: what no longer matches (body, columns, store)."""
    item = ItemFields(change.item_id, change.etag, change.fields)
    body = item_body(item)
    try:
        entry = AuditEntry.model_validate(body)
    except ValidationError:
        detail = "its Details column no longer holds an audit entry"
        return OutsideChange(change=ChangeKind.EDITED, detail=detail, **base)
    found_hash = entry_hash(entry.prev_hash, body)
    expected = await delta_store.stored_hash(store, entry.seq)
    base.update(name=f"Seq {entry.seq}", expected_hash=expected or entry.hash)
    if found_hash != entry.hash:
        detail = f"seq {entry.seq}: its content does not match its hash"
    else:
        finding = item_finding(entry, item, expected)
        detail = finding.reason if finding else "its columns and body still match"
    return OutsideChange(change=ChangeKind.EDITED, detail=detail, found_hash=found_hash, **base)


def _same(wanted: Any, found: Any) -> bool:
    """Compare a column as SharePoint returns it (numbers as floats, times with ``Z``)."""
    if isinstance(wanted, int) and isinstance(found, int | float) and not isinstance(found, bool):
        return float(wanted) == float(found)
    return str(wanted) == str(found) if found is not None else wanted in (None, "")
