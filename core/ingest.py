"""Ingest: an incident version and the card work it causes, committed in one transaction.

On PostgreSQL the versions of one XDR incident (Sentinel's and Defender XDR's) are ingested
one transaction at a time (an advisory lock per XDR id), so replicas racing never make two
rows or two cards of it.

``IngestWriter`` is a group commit (``core.store.group_commit``): concurrent requests queue
their items, whatever has queued up is committed in a single transaction, and each request is
answered only after the transaction holding its own rows has committed. A failed commit
answers every request of that batch with ``StoreUnavailable`` (the sender retries; nothing is
half-saved).
The incident and its jobs are encrypted with the store's cipher once, when they are written.
On PostgreSQL the batches run on one kept connection, straight on asyncpg
(``core.store.held``); on SQLite on the store's writer thread, straight on ``sqlite3``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from core.crypto import PayloadCipher
from core.errors import StoreUnavailable
from core.leader import lock_key
from core.models import Incident
from core.store import outbox
from core.store.group_commit import MAX_BATCH, GroupCommit
from core.store.held import HeldConnection
from core.store.ingest_sql import IngestSql, Targets
from core.store.sql import RawPg
from core.store.store import Store, version_key
from core.tracing import carrier

log = logging.getLogger(__name__)

CARD_JOB = "incident.card"


@dataclass(frozen=True)
class IngestResult:
    """What became of one ingested version."""

    incident_name: str
    duplicate: bool
    changed: bool
    jobs: int = 0


def card_ordering_key(incident_key: str, conversation_id: str) -> str:
    """The ordering key of an incident's card in one conversation."""
    return f"card:{incident_key}|{conversation_id}"


Item = tuple[Incident, str | None, dict[str, str]]
"""One version to ingest: the incident, its webhook id (``None`` when polled) and the trace
context of the request that brought it."""


class IngestWriter:
    """Commits incident versions and their outbox jobs, batching concurrent requests."""

    def __init__(
        self, store: Store, *, on_commit: Callable[[], None], max_batch: int = MAX_BATCH
    ) -> None:
        self._store = store
        self._on_commit = on_commit
        self._commits: GroupCommit[Item, IngestResult] = GroupCommit(
            self._commit, max_batch=max_batch
        )
        self._running = False
        self._held = HeldConnection(store.engine) if store.dialect == "postgresql" else None

    async def start(self) -> None:
        """Take submissions."""
        self._running = True

    async def stop(self) -> None:
        """Refuse new submissions; return once what was submitted is committed (or failed)."""
        self._running = False
        await self._commits.close()
        if self._held is not None:
            await self._held.close()

    async def submit(self, incident: Incident, webhook_id: str | None = None) -> IngestResult:
        """Store ``incident`` (deduplicated by ``webhook_id``); returns once committed."""
        if not self._running:
            raise StoreUnavailable("the ingest writer is not running")
        return await self._commits.submit((incident, webhook_id, carrier()))

    async def _commit(self, items: Sequence[Item]) -> list[IngestResult]:
        try:
            if self._held is not None:
                results = await self._held.run_write(self._write, list(items))
            else:
                results = await self._store.run_write(self._write, list(items))
        except (StoreUnavailable, SQLAlchemyError, OSError) as exc:
            log.warning("ingest commit failed", extra={"batch": len(items), "error": repr(exc)})
            raise StoreUnavailable("the store could not commit") from exc
        if any(r.jobs for r in results):
            self._on_commit()
        return results

    def _write(self, conn: Connection | RawPg, items: list[Item]) -> list[IngestResult]:
        return ingest_batch(conn, items, self._store.cipher)


def ingest_batch(
    conn: Connection | RawPg, items: list[Item], cipher: PayloadCipher
) -> list[IngestResult]:
    """Store a batch of versions in ``conn``'s transaction and enqueue the cards they change.

    The outcome is the same as storing the items one by one, in order: a repeated webhook id
    is a duplicate (of the earlier delivery, or of an earlier item), a version not newer than
    the stored one (or an earlier item's) changes nothing. The work is set-based: a handful
    of statements per batch (``core.store.ingest_sql``). Each item's trace context goes with
    its jobs; ``cipher`` encrypts what is stored, only the newest version of each incident.
    """
    if not items:
        return []
    sql = IngestSql(conn)
    now = time.time()
    items = _join_twins(sql, items)
    receipts, first = _receipts(items, now)
    opened = sql.open(
        receipts,
        sorted({incident.key for incident, _id, _trace in items}),
        max(incident.severity.rank for incident, _id, _trace in items),
    )
    results = _duplicates(sql, items, first, opened.new_ids)
    fresh = [i for i, result in enumerate(results) if result is None]
    latest = opened.versions
    changed: list[int] = []
    newest: dict[str, Incident] = {}
    for i in fresh:
        incident = items[i][0]
        version = version_key(incident)
        stored = latest.get(incident.key)
        if stored is not None and version <= stored:
            results[i] = IngestResult(incident.name, duplicate=False, changed=False)
            continue
        latest[incident.key] = version
        newest[incident.key] = incident
        changed.append(i)
    rows = [_incident_row(newest[key], latest[key], now, cipher) for key in sorted(newest)]
    sql.upsert_incidents(rows)  # in key order, as the locks are taken: batches never cross-wait
    jobs = _enqueue_cards(sql, [items[i] for i in changed], opened.targets, cipher)
    for i, count in zip(changed, jobs, strict=True):
        results[i] = IngestResult(items[i][0].name, duplicate=False, changed=True, jobs=count)
    return [result for result in results if result is not None]


def _join_twins(sql: IngestSql, items: list[Item]) -> list[Item]:
    """The items, each version that has no row of its own under the key of its twin: the
    same XDR incident stored (or earlier in the batch) under the other source's key, so both
    sources' versions update one card. A version stored under its own key stays there."""
    reporting = [incident for incident, _id, _trace in items if incident.xdr_id]
    if not reporting:
        return items
    _lock_xdr_ids(sql, sorted({str(incident.xdr_id) for incident in reporting}))
    stored, twins = sql.xdr_rows(
        sorted({str(incident.xdr_id) for incident in reporting}),
        sorted({incident.key for incident in reporting}),
    )
    joined: list[Item] = []
    for incident, webhook_id, trace in items:
        if incident.xdr_id and incident.key not in stored:
            keys = twins.setdefault(incident.xdr_id, [])
            if keys and keys[0] != incident.key:
                incident = incident.model_copy(update={"key": keys[0], "source_key": incident.key})
            elif not keys:
                keys.append(incident.key)  # the first of the batch keeps the card
        joined.append((incident, webhook_id, trace))
    return joined


def _lock_xdr_ids(sql: IngestSql, xdr_ids: list[str]) -> None:
    """On PostgreSQL, hold a transaction lock per XDR id of the batch, in sorted order.

    Two replicas ingesting the Sentinel and the Defender XDR versions of one incident take
    turns: the second waits for the first to commit, then finds its row as the twin (one
    row, one card). Sorted, so two batches never wait on each other crosswise. SQLite has a
    single writer and needs none.
    """
    for xdr_id in xdr_ids:
        sql.lock(lock_key(f"xdr:{xdr_id}"))


def _receipts(items: list[Item], now: float) -> tuple[list[dict[str, object]], dict[str, int]]:
    """The receipt rows of the batch's webhook ids, and the first item carrying each id."""
    first: dict[str, int] = {}
    for i, (_incident, webhook_id, _trace) in enumerate(items):
        if webhook_id is not None:
            first.setdefault(webhook_id, i)
    receipts: list[dict[str, object]] = [
        {
            "webhook_id": webhook_id,
            "incident_key": items[i][0].key,
            "incident_name": items[i][0].name,
            "received_at": now,
        }
        for webhook_id, i in sorted(first.items())  # in one order: batches never cross-wait
    ]
    return receipts, first


def _duplicates(
    sql: IngestSql, items: list[Item], first: dict[str, int], new: set[str]
) -> list[IngestResult | None]:
    """The duplicate items' results (``None`` for the others): ids seen before or earlier."""
    earlier = sql.receipt_names([webhook_id for webhook_id in first if webhook_id not in new])
    results: list[IngestResult | None] = []
    for i, (_incident, webhook_id, _trace) in enumerate(items):
        if webhook_id is None or (webhook_id in new and first[webhook_id] == i):
            results.append(None)
            continue
        name = earlier.get(webhook_id, items[first[webhook_id]][0].name)
        results.append(IngestResult(name, duplicate=True, changed=False))
    return results


def _incident_row(
    incident: Incident, version: str, now: float, cipher: PayloadCipher
) -> dict[str, object]:
    return {
        "key": incident.key,
        "version": version,
        "severity": incident.severity.value,
        "payload": cipher.encrypt(incident.model_dump_json()),
        "updated_at": now,
        "number": incident.number,
        "xdr_id": incident.xdr_id,
    }


def _names(incident: Incident) -> frozenset[str]:
    return frozenset(source.value for source in incident.reported_by)


def _enqueue_cards(
    sql: IngestSql, changed: list[Item], found: Targets, cipher: PayloadCipher
) -> list[int]:
    """One card job per conversation that shows, or now wants, each version; how many each.

    A conversation whose card of that incident already has a job pending (or got one from an
    earlier item of the batch) gets none.
    """
    if not changed:
        return []
    wanted = [
        found.of(incident.key, incident.severity.rank, _names(incident))
        for incident, _id, _trace in changed
    ]
    ordering = {
        card_ordering_key(incident.key, conv)
        for (incident, _id, _trace), targets in zip(changed, wanted, strict=True)
        for conv in targets
    }
    waiting = sql.waiting(sorted(ordering))
    rows, counts = [], []
    for (incident, _id, trace), targets in zip(changed, wanted, strict=True):
        count = 0
        for conversation_id in targets:
            key = card_ordering_key(incident.key, conversation_id)
            if key in waiting:
                continue
            waiting.add(key)
            payload = {"incident_key": incident.key, "conversation_id": conversation_id}
            rows.append(
                outbox.job_row(
                    CARD_JOB,
                    key,
                    {**payload, "trace": trace or {}},
                    cipher=cipher,
                    conversation_id=conversation_id,
                )
            )
            count += 1
        counts.append(count)
    sql.add_jobs(rows)
    return counts
