"""What the evidence-library watch remembers: the eTags it accounted for, its delta links.

A round of ``graph.delta_watch`` ends with ``record_round``: in one transaction the eTags
it saw, the audit entries of the changes Warden did not make (with their mirror jobs), the
card jobs for the auditors' channel, and the source's delta link (a checkpoint). So the link
moves only with the work it covers, and a round repeated after a crash reports nothing twice.

Each change alerted on is also kept by its key (source, item id, the item's version:
its eTag, or ``deleted:<last eTag>``) in ``outside_change_alerts``, in the same transaction:
a change read again however it comes back (a delta link lost or restored from a backup, a
resync after 410 Gone) finds its key and gets no second audit entry and no second card. The
card job carries the keys; the card is posted once per key (``record_posted``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, delete, select, tuple_, update

from core.audit_chain import AuditEntry
from core.outside_changes import OutsideChange
from core.store import card_sends
from core.store.evidence_audit import FollowUp, append_audit, audit_entries, serialise_writes
from core.store.outbox import Job
from core.store.schema import checkpoints
from core.store.schema_delta import delta_items, outside_change_alerts
from core.store.schema_evidence import audit_entries as audit_table
from core.store.schema_evidence import evidence_requests, evidence_submissions
from core.store.store import Store

OUTSIDE_CHANGE_JOB = "audit.outside_change"
"""Posts a card about changes made outside Warden: ``{"conversation_id", "changes",
"summary"}`` (``bot.outside_changes``)."""


def checkpoint_name(source: str) -> str:
    """The checkpoint holding a source's delta link."""
    return f"graph-delta:{source}"


@dataclass
class Round:
    """What one delta round of one source found, to be recorded at once.

    ``seen`` maps item ids to the eTag now accounted for (None: the item is gone);
    ``versions`` maps the item id of each change to the version alerted on (its key's last
    part; ``alert_version``); ``summary``: the round was a resync, its changes go out as one
    summary card.
    """

    source: str
    link: str
    seen: dict[str, str | None] = field(default_factory=dict)
    changes: list[OutsideChange] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    summary: bool = False


def alert_version(etag: str, deleted: bool, before: str | None) -> str:
    """The version of a change as its alert key has it: the item's eTag now, or for a
    removal ``deleted:`` and the eTag Warden last accounted for."""
    return f"deleted:{before or ''}" if deleted or not etag else etag


async def known(store: Store, source: str) -> dict[str, str]:
    """The eTag accounted for of every item of ``source``, by item id."""
    stmt = select(delta_items.c.item_id, delta_items.c.etag).where(delta_items.c.source == source)
    async with store.reading() as conn:
        return {row.item_id: row.etag for row in (await conn.execute(stmt)).all()}


def card_jobs(
    changes: Sequence[OutsideChange],
    channel: str | None,
    *,
    summary: bool,
    keys: Mapping[str, list[str]] | None = None,
) -> list[FollowUp]:
    """The card jobs of ``changes``: one each, or one summary; none without a channel.
    ``keys``: the alert key (source, item id, version) of each change, by item id."""
    if not channel or not changes:
        return []
    ordering = f"outside-change|{channel}"
    batches = [list(changes)] if summary else [[change] for change in changes]
    known_keys = keys or {}
    return [
        FollowUp(
            OUTSIDE_CHANGE_JOB,
            ordering,
            {
                "conversation_id": channel,
                "changes": [change.to_json() for change in batch],
                "summary": summary,
                "alerts": [known_keys[c.item_id] for c in batch if c.item_id in known_keys],
            },
            conversation_id=channel,
        )
        for batch in batches
    ]


async def record_round(store: Store, found: Round, channel: str | None) -> list[OutsideChange]:
    """Record a round: eTags, audit entries, card jobs and the delta link, in one transaction;
    the changes alerted on now (those of ``found`` never alerted on before)."""

    def write(conn: Connection, _: None) -> list[OutsideChange]:
        now = time.time()
        _remember(conn, store, found.source, found.seen, now)
        keys = _first_alerts(conn, store, found, now)
        fresh = [change for change in found.changes if change.item_id in keys]
        if fresh:
            serialise_writes(conn)
            drafts = [change.audit_draft() for change in fresh]
            jobs = card_jobs(fresh, channel, summary=found.summary, keys=keys)
            append_audit(conn, store, drafts, jobs)
        values = {"value": found.link, "updated_at": now}
        stmt = store.insert(checkpoints).values(name=checkpoint_name(found.source), **values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=values))
        return fresh

    return await store.run_write(write, None)


def _first_alerts(conn: Connection, store: Store, found: Round, now: float) -> dict[str, list[str]]:
    """Keep the alert key of each change of ``found``; the keys (by item id) of those never
    alerted on before, which alone get an audit entry and a card."""
    fresh: dict[str, list[str]] = {}
    for change in found.changes:
        version = found.versions.get(change.item_id, "")
        key = {"source": found.source, "item_id": change.item_id, "version": version}
        stmt = store.insert(outside_change_alerts).values(alerted_at=now, **key)
        done = conn.execute(stmt.on_conflict_do_nothing(index_elements=list(key)))
        if done.rowcount == 1:
            fresh[change.item_id] = [found.source, change.item_id, version]
    return fresh


async def already_posted(store: Store, keys: Sequence[Sequence[str]]) -> bool:
    """Whether a card already showed every alert of ``keys`` (none given: False)."""
    wanted = {tuple(key) for key in keys}
    if not wanted:
        return False
    table = outside_change_alerts
    stmt = select(table.c.source, table.c.item_id, table.c.version).where(
        tuple_(table.c.source, table.c.item_id, table.c.version).in_(list(wanted)),
        table.c.posted_at.is_not(None),
    )
    async with store.reading() as conn:
        posted = {tuple(row) for row in (await conn.execute(stmt)).all()}
    return wanted <= posted


async def record_posted(
    store: Store,
    keys: Sequence[Sequence[str]],
    activity_id: str,
    *,
    send: tuple[str, str] | None = None,
    job: Job | None = None,
) -> None:
    """The card at ``activity_id`` showed the alerts of ``keys``; in the same commit, the
    post in flight ``send`` (card key, conversation id; ``core.store.card_sends``) is
    forgotten. With ``job``, only while its lease holds (``LeaseLost`` otherwise)."""
    table = outside_change_alerts
    stmt = (
        update(table)
        .where(
            tuple_(table.c.source, table.c.item_id, table.c.version).in_(
                [tuple(key) for key in keys]
            )
        )
        .values(activity_id=activity_id, posted_at=time.time())
    )
    await card_sends.record(store, stmt if keys else None, send, job=job)


def _remember(
    conn: Connection, store: Store, source: str, seen: Mapping[str, str | None], now: float
) -> None:
    """Upsert the eTags seen, forget the items gone."""
    gone = [item_id for item_id, etag in seen.items() if etag is None]
    if gone:
        conn.execute(
            delete(delta_items).where(
                delta_items.c.source == source, delta_items.c.item_id.in_(gone)
            )
        )
    for item_id, etag in seen.items():
        if etag is None:
            continue
        values = {"etag": etag, "updated_at": now}
        stmt = store.insert(delta_items).values(source=source, item_id=item_id, **values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["source", "item_id"], set_=values))


@dataclass(frozen=True)
class FiledFile:
    """What Warden recorded of a file it filed: its request, requirement, name and SHA-256."""

    request_id: str
    requirement_id: str
    file_name: str
    sha256: str


async def filed_file(store: Store, item_id: str) -> FiledFile | None:
    """The latest submission Warden filed as drive item ``item_id``, or None."""
    subs, reqs = evidence_submissions, evidence_requests
    stmt = (
        select(subs.c.request_id, subs.c.file_name, subs.c.sha256, reqs.c.requirement_id)
        .join(reqs, reqs.c.id == subs.c.request_id)
        .where(subs.c.item_id == item_id, subs.c.sha256.is_not(None))
        .order_by(subs.c.at.desc())
        .limit(1)
    )
    async with store.reading() as conn:
        row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    return FiledFile(row.request_id, row.requirement_id, row.file_name or item_id, row.sha256)


async def mirrored_entry(store: Store, item_id: str) -> AuditEntry | None:
    """The audit entry Warden mirrored as Audit Log item ``item_id``, or None."""
    stmt = select(audit_table.c.seq).where(audit_table.c.item_id == item_id)
    async with store.reading() as conn:
        seq = (await conn.execute(stmt)).scalar()
    if seq is None:
        return None
    found = await audit_entries(store, after_seq=int(seq) - 1, limit=1)
    return found[0] if found else None


async def stored_hash(store: Store, seq: int) -> str | None:
    """The hash Warden's store holds for audit entry ``seq``, or None."""
    stmt = select(audit_table.c.hash).where(audit_table.c.seq == seq)
    async with store.reading() as conn:
        value = (await conn.execute(stmt)).scalar()
    return None if value is None else str(value)
