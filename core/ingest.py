"""Ingest: an incident version and the card work it causes, committed in one transaction.

``IngestWriter`` is a group commit: concurrent requests queue their items, one writer task
commits whatever has queued up in a single transaction, and each request is answered only
after the transaction holding its own rows has committed. A failed commit answers every
request of that batch with ``StoreUnavailable`` (the sender retries; nothing is half-saved).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import StoreUnavailable
from core.models import Incident
from core.store import outbox
from core.store.schema import conversations, incidents, posted_cards, subscriptions, webhook_receipts
from core.store.store import Store, version_key

log = logging.getLogger(__name__)

CARD_JOB = "incident.card"


@dataclass(frozen=True)
class IngestResult:
    """What became of one ingested version."""

    incident_name: str
    duplicate: bool
    changed: bool


@dataclass
class _Item:
    webhook_id: str | None
    incident: Incident
    future: asyncio.Future[IngestResult]


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
        await self._queue.put(_Item(webhook_id, incident, future))
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
        try:
            async with self._store.writing() as conn:
                results = [await ingest_one(conn, i.incident, i.webhook_id) for i in batch]
        except (StoreUnavailable, SQLAlchemyError, OSError) as exc:
            log.warning("ingest commit failed", extra={"batch": len(batch), "error": repr(exc)})
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(StoreUnavailable("the store could not commit"))
            return
        for item, result in zip(batch, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)
        if any(r.changed for r in results):
            self._on_commit()


async def ingest_one(
    conn: AsyncConnection, incident: Incident, webhook_id: str | None
) -> IngestResult:
    """Store one version inside ``conn``'s transaction and enqueue the cards it changes."""
    dialect = conn.dialect.name
    now = time.time()
    if webhook_id is not None:
        stmt = Store.insert_on(dialect, webhook_receipts).values(
            webhook_id=webhook_id,
            incident_key=incident.key,
            incident_name=incident.name,
            received_at=now,
        )
        inserted = await conn.execute(stmt.on_conflict_do_nothing(index_elements=["webhook_id"]))
        if not inserted.rowcount:
            name = await conn.scalar(
                select(webhook_receipts.c.incident_name).where(
                    webhook_receipts.c.webhook_id == webhook_id
                )
            )
            return IngestResult(str(name), duplicate=True, changed=False)
    version = version_key(incident)
    current = select(incidents.c.version).where(incidents.c.key == incident.key)
    if dialect == "postgresql":
        current = current.with_for_update()
    stored = await conn.scalar(current)
    if stored is not None and version <= stored:
        return IngestResult(incident.name, duplicate=False, changed=False)
    values = {
        "version": version,
        "severity": incident.severity.value,
        "payload": incident.model_dump_json(),
        "updated_at": now,
    }
    upsert = Store.insert_on(dialect, incidents).values(key=incident.key, **values)
    await conn.execute(upsert.on_conflict_do_update(index_elements=["key"], set_=values))
    await _enqueue_cards(conn, incident)
    return IngestResult(incident.name, duplicate=False, changed=True)


async def _enqueue_cards(conn: AsyncConnection, incident: Incident) -> None:
    """One card job per conversation that shows, or now wants, this incident."""
    active = select(conversations.c.id).where(conversations.c.active.is_(True))
    shown = select(posted_cards.c.conversation_id).where(
        posted_cards.c.incident_key == incident.key,
        posted_cards.c.conversation_id.in_(active),
    )
    wanted = select(subscriptions.c.conversation_id).where(
        subscriptions.c.min_rank <= incident.severity.rank,
        subscriptions.c.conversation_id.in_(active),
    )
    targets = sorted({row[0] for row in await conn.execute(shown.union(wanted))})
    keys = {card_ordering_key(incident.key, conv): conv for conv in targets}
    waiting = await outbox.pending_keys(conn, list(keys))
    for key, conversation_id in keys.items():
        if key in waiting:
            continue
        payload = {"incident_key": incident.key, "conversation_id": conversation_id}
        await outbox.enqueue(conn, CARD_JOB, key, payload, conversation_id=conversation_id)
