"""Ingest: an incident version and the card work it causes, committed in one transaction.

On PostgreSQL the versions of one XDR incident (Sentinel's and Defender XDR's) are ingested
one transaction at a time (an advisory lock per XDR id), so replicas racing never make two
rows or two cards of it.

``IngestWriter`` is a group commit: concurrent requests queue their items, one writer task
commits whatever has queued up in a single transaction, and each request is answered only
after the transaction holding its own rows has committed. A failed commit answers every
request of that batch with ``StoreUnavailable`` (the sender retries; nothing is half-saved).
The incident and its jobs are encrypted with the store's cipher once, when they are written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from core.crypto import PayloadCipher
from core.errors import StoreUnavailable
from core.leader import lock_key
from core.models import Incident
from core.store import outbox
from core.store.sql import Statement, in_list
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


@dataclass
class _Item:
    webhook_id: str | None
    incident: Incident
    future: asyncio.Future[IngestResult]
    trace: dict[str, str]


def card_ordering_key(incident_key: str, conversation_id: str) -> str:
    """The ordering key of an incident's card in one conversation."""
    return f"card:{incident_key}|{conversation_id}"


class IngestWriter:
    """Commits incident versions and their outbox jobs, batching concurrent requests."""

    def __init__(
        self, store: Store, *, on_commit: Callable[[], None], max_batch: int = 256
    ) -> None:
        self._store = store
        self._on_commit = on_commit
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the writer task."""
        self._task = asyncio.create_task(self._run(), name="ingest-writer")

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        if self._task is None:
            return
        await self._queue.put(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(self, incident: Incident, webhook_id: str | None = None) -> IngestResult:
        """Store ``incident`` (deduplicated by ``webhook_id``); returns once committed."""
        if self._task is None or self._task.done():
            raise StoreUnavailable("the ingest writer is not running")
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(webhook_id, incident, future, carrier()))
        return await future

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [] if first is None else [first]
            stopping = first is None
            while not stopping and len(batch) < self._max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
            if batch:
                await self._commit(batch)
            if stopping:
                return

    async def _commit(self, batch: list[_Item]) -> None:
        items = [(item.incident, item.webhook_id, item.trace) for item in batch]
        try:
            results = await self._store.run_write(self._write, items)
        except (StoreUnavailable, SQLAlchemyError, OSError) as exc:
            log.warning("ingest commit failed", extra={"batch": len(batch), "error": repr(exc)})
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(StoreUnavailable("the store could not commit"))
            return
        for item, result in zip(batch, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)
        if any(r.jobs for r in results):
            self._on_commit()

    def _write(self, conn: Connection, items: list[Item]) -> list[IngestResult]:
        return ingest_batch(conn, items, self._store.cipher)


Item = tuple[Incident, str | None, dict[str, str]]


def ingest_batch(conn: Connection, items: list[Item], cipher: PayloadCipher) -> list[IngestResult]:
    """Store each version in ``conn``'s transaction and enqueue the cards it changes.

    Each item's trace context goes with its jobs, so their calls continue its trace;
    ``cipher`` encrypts what is stored.
    """
    _lock_xdr_ids(conn, items)
    return [
        ingest_one(conn, incident, webhook_id, trace, cipher=cipher)
        for incident, webhook_id, trace in items
    ]


_RECEIPT = Statement(
    "INSERT INTO webhook_receipts (webhook_id, incident_key, incident_name, received_at) "
    "VALUES (:webhook_id, :incident_key, :incident_name, :received_at) "
    "ON CONFLICT (webhook_id) DO NOTHING"
)
_RECEIPT_NAME = Statement(
    "SELECT incident_name FROM webhook_receipts WHERE webhook_id = :webhook_id"
)
_VERSION = {
    "sqlite": Statement('SELECT version FROM incidents WHERE "key" = :key'),
    "postgresql": Statement('SELECT version FROM incidents WHERE "key" = :key FOR UPDATE'),
}
_TWIN = Statement(
    'SELECT "key" FROM incidents WHERE xdr_id = :xdr_id AND "key" <> :key '
    'ORDER BY updated_at, "key" LIMIT 1'
)
_UPSERT = Statement(
    'INSERT INTO incidents ("key", version, severity, payload, updated_at, number, xdr_id) '
    "VALUES (:key, :version, :severity, :payload, :updated_at, :number, :xdr_id) "
    'ON CONFLICT ("key") DO UPDATE SET version = excluded.version, '
    "severity = excluded.severity, payload = excluded.payload, updated_at = excluded.updated_at, "
    "number = excluded.number, xdr_id = COALESCE(excluded.xdr_id, incidents.xdr_id)"
)
_TARGETS = Statement(
    "SELECT conversation_id FROM posted_cards WHERE incident_key = :key "
    "AND conversation_id IN (SELECT id FROM conversations WHERE active) "
    "UNION SELECT conversation_id FROM subscriptions WHERE min_rank <= :rank "
    "AND sources IN (:s1, :s2, 'sentinel,defender') "
    "AND conversation_id IN (SELECT id FROM conversations WHERE active)"
)
_WAITING = "SELECT ordering_key FROM outbox WHERE status = 'pending' AND ordering_key IN "
_INSERT_JOB = Statement(
    "INSERT INTO outbox (kind, ordering_key, conversation_id, payload, status, attempts, "
    "next_attempt_at, lease_until, last_error, created_at, updated_at) VALUES (:kind, "
    ":ordering_key, :conversation_id, :payload, :status, :attempts, :next_attempt_at, "
    ":lease_until, :last_error, :created_at, :updated_at)"
)
"""The hot path's statements, built once: ingest is the busiest write Warden makes."""


_XDR_LOCK = Statement("SELECT pg_advisory_xact_lock(:key)")


def _lock_xdr_ids(conn: Connection, items: list[Item]) -> None:
    """On PostgreSQL, hold a transaction lock per XDR id of the batch, in sorted order.

    Two replicas ingesting the Sentinel and the Defender XDR versions of one incident take
    turns: the second waits for the first to commit, then finds its row as the twin (one
    row, one card). Sorted, so two batches never wait on each other crosswise. SQLite has a
    single writer and needs none.
    """
    if conn.dialect.name != "postgresql":
        return
    for xdr_id in sorted({incident.xdr_id for incident, _, _ in items if incident.xdr_id}):
        _XDR_LOCK.run(conn, {"key": lock_key(f"xdr:{xdr_id}")})


def ingest_one(
    conn: Connection,
    incident: Incident,
    webhook_id: str | None,
    trace: dict[str, str] | None = None,
    *,
    cipher: PayloadCipher,
) -> IngestResult:
    """Store one version (deduplicated by ``webhook_id``); enqueue its card jobs if newer.

    Only a version that is stored is encrypted (once); a stale or duplicate one costs none.
    """
    now = time.time()
    if webhook_id is not None:
        inserted = _RECEIPT.run(
            conn,
            {
                "webhook_id": webhook_id,
                "incident_key": incident.key,
                "incident_name": incident.name,
                "received_at": now,
            },
        )
        if not inserted.rowcount:
            name = _RECEIPT_NAME.run(conn, {"webhook_id": webhook_id}).scalar()
            return IngestResult(str(name), duplicate=True, changed=False)
    version = version_key(incident)
    stored = _VERSION[conn.dialect.name].run(conn, {"key": incident.key}).scalar()
    if stored is None and incident.xdr_id:
        incident, stored = _as_twin(conn, incident)
    if stored is not None and version <= stored:
        return IngestResult(incident.name, duplicate=False, changed=False)
    _UPSERT.run(
        conn,
        {
            "key": incident.key,
            "version": version,
            "severity": incident.severity.value,
            "payload": cipher.encrypt(incident.model_dump_json()),
            "updated_at": now,
            "number": incident.number,
            "xdr_id": incident.xdr_id,
        },
    )
    jobs = _enqueue_cards(conn, incident, trace or {}, cipher)
    return IngestResult(incident.name, duplicate=False, changed=True, jobs=jobs)


def _as_twin(conn: Connection, incident: Incident) -> tuple[Incident, str | None]:
    """``incident`` under the key of its stored twin (the same XDR incident reported by the
    other source), with that twin's stored version; unchanged when there is none.

    Only an incident with no row of its own joins a twin, so a card already posted under
    an incident's own key keeps being updated there.
    """
    params = {"xdr_id": incident.xdr_id, "key": incident.key}
    twin = _TWIN.run(conn, params).scalar()
    if twin is None:
        return incident, None
    joined = incident.model_copy(update={"key": str(twin), "source_key": incident.key})
    return joined, _VERSION[conn.dialect.name].run(conn, {"key": joined.key}).scalar()


def _source_params(incident: Incident) -> dict[str, str]:
    """The ``sources`` values of subscriptions that want ``incident`` (with ``both``)."""
    names = sorted(source.value for source in incident.reported_by)
    return {"s1": names[0], "s2": names[-1]}


def _enqueue_cards(
    conn: Connection, incident: Incident, trace: dict[str, str], cipher: PayloadCipher
) -> int:
    """One card job per conversation that shows, or now wants, this incident; how many."""
    params = {"key": incident.key, "rank": incident.severity.rank, **_source_params(incident)}
    found = _TARGETS.run(conn, params)
    targets = sorted({row[0] for row in found.rows})
    if not targets:
        return 0
    keys = {card_ordering_key(incident.key, conv): conv for conv in targets}
    fragment, params = in_list("k", list(keys))
    waiting = {row[0] for row in Statement(_WAITING + fragment).run(conn, params).rows}
    rows = [
        outbox.job_row(
            CARD_JOB,
            key,
            {"incident_key": incident.key, "conversation_id": conversation_id, "trace": trace},
            cipher=cipher,
            conversation_id=conversation_id,
        )
        for key, conversation_id in keys.items()
        if key not in waiting
    ]
    _INSERT_JOB.run_many(conn, rows)
    return len(rows)
