"""The store: conversations, subscriptions, incidents and what was posted where.

Every write that causes outbound work writes its outbox rows in the same transaction
(``core.store.outbox``). On SQLite, writes from this process are serialised by one lock so
that a read-then-write transaction never meets another writer half-way. The columns in
``schema_sealed.SEALED`` are encrypted and decrypted by the store's ``cipher`` (``core.crypto``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, TypeVar

from sqlalchemy import Connection, Engine, func, select, text, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.crypto import PayloadCipher
from core.errors import SettingsError, StoreUnavailable
from core.models import (
    ConversationKind,
    ConversationRef,
    ConversationStatus,
    Incident,
    IncidentSource,
    Severity,
    Subscription,
)
from core.store import admin_audit, migrate
from core.store.direct_read import DirectReader
from core.store.engine import create_engine, create_sqlite_writer, insert_for, sqlite_file
from core.store.schema import conversations, outbox, posted_cards, subscriptions
from core.store.sql import Rows, Statement
from core.store.writer import SqliteWriter

A = TypeVar("A")
R = TypeVar("R")


@dataclass(frozen=True)
class Conversation:
    """A stored conversation: its reference and whether the bot is still in it."""

    ref: ConversationRef
    active: bool


@dataclass(frozen=True)
class PostedCard:
    """Where an incident's card was posted in one conversation, and which version it shows."""

    activity_id: str
    version: str


_INCIDENT = Statement('SELECT payload FROM incidents WHERE "key" = :key')
_POSTED_CARD = Statement(
    "SELECT activity_id, version FROM posted_cards "
    "WHERE incident_key = :incident_key AND conversation_id = :conversation_id"
)
_CONVERSATION = Statement("SELECT reference, active FROM conversations WHERE id = :id")

SENTINEL_ONLY = frozenset({IncidentSource.SENTINEL})
"""What a subscription receives unless it names its sources."""


def sources_text(sources: frozenset[IncidentSource]) -> str:
    """How ``subscriptions.sources`` stores a set of sources (``sentinel,defender``)."""
    return ",".join(source.value for source in IncidentSource if source in sources)


def version_key(incident: Incident) -> str:
    """A string that sorts like the incident's version order (UTC time, then etag)."""
    stamp = incident.last_modified.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{stamp}|{incident.etag}"


class Store:
    """Warden's persistent state on SQLite or PostgreSQL, through SQLAlchemy Core.

    ``cipher`` encrypts the sealed columns; without one the store reads values written
    before encryption but refuses to write them.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        writer: Engine | None = None,
        cipher: PayloadCipher | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.engine = engine
        self.cipher = cipher or PayloadCipher([])
        self.dialect = engine.dialect.name
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        self._writer = (
            SqliteWriter(writer, self._write_lock)
            if writer is not None and self._write_lock is not None
            else None
        )
        self._replica_lock: IO[str] | None = None
        self._reader = DirectReader(engine, timeout)

    @classmethod
    def from_url(
        cls, url: str, timeout: float = 10.0, *, cipher: PayloadCipher | None = None
    ) -> Store:
        """A store on the database at ``url`` (SQLite also gets its one writer thread).

        A call waits at most ``timeout`` seconds for a lock or an answer, then fails with
        ``StoreUnavailable`` (the HTTP edge answers 503 with ``Retry-After``).
        """
        engine = create_engine(url, timeout)
        writer = create_sqlite_writer(url, timeout) if engine.dialect.name == "sqlite" else None
        return cls(engine, writer, cipher, timeout)

    def claim_single_replica(self) -> None:
        """On SQLite, make sure no other Warden serves from the same file (one replica only).

        Raises ``SettingsError`` naming the file when another process holds it; several
        replicas need PostgreSQL. PostgreSQL needs no claim. The claim ends with ``close``.
        """
        database = sqlite_file(self.engine.url)
        if database is None:
            return
        path = Path(database).with_suffix(".replica.lock")
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise SettingsError(
                f"WARDEN_DATABASE_URL: another Warden already serves from {database}; "
                "SQLite allows one replica: use PostgreSQL (postgresql+asyncpg://…) for several"
            ) from None
        self._replica_lock = handle

    async def close(self) -> None:
        """Release every connection, the writer thread and the replica claim."""
        await self.engine.dispose()
        self._reader.close()
        if self._replica_lock is not None:
            self._replica_lock.close()
            self._replica_lock = None
        if self._writer is not None:
            await self._writer.close()

    async def run_write(self, work: Callable[[Connection, A], R], arg: A) -> R:
        """Run synchronous ``work(conn, arg)`` as one atomic write, committed on return.

        On PostgreSQL it runs in a transaction of its own on the async connection. On SQLite
        it runs on the writer thread, in one call (one hop, not one per statement), grouped
        with the writes that were queued while the previous group committed: each in a
        savepoint of the group's transaction, so a work that raises is undone alone (its
        caller gets the error) and the others commit together, one ``COMMIT`` for all.
        """
        if self._writer is None:
            async with self.writing() as conn:
                return await conn.run_sync(work, arg)
        try:
            return await self._writer.run(work, arg)
        except OperationalError as exc:  # the group's commit, or this write's statement
            raise StoreUnavailable(f"store write failed: {exc.orig!r}") from exc

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction; commit failures surface as ``StoreUnavailable``."""
        lock = self._write_lock or contextlib.nullcontext()
        try:
            async with lock, self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreUnavailable(f"store write failed: {exc.orig!r}") from exc

    async def read(self, statement: Statement, params: dict[str, Any]) -> Rows:
        """The rows of one short read (a lookup by key), at a fraction of ``reading``'s cost
        (``core.store.direct_read``); ``StoreUnavailable`` when the database cannot be read."""
        if self._reader.available:
            return await self._reader.read(statement, params)
        [rows] = await self.read_many([(statement, params)])
        return rows

    async def read_many(self, reads: Sequence[tuple[Statement, dict[str, Any]]]) -> list[Rows]:
        """The rows of a few short reads taken together, in one snapshot, as ``read`` takes
        one; ``StoreUnavailable`` when the database cannot be read."""
        if self._reader.available:
            return await self._reader.read_many(reads)
        async with self.reading() as conn:  # in memory: only the pool's connection has it
            found = [(await conn.execute(text(s.sql), params)).all() for s, params in reads]
        return [Rows(rows, len(rows)) for rows in found]

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """One read-only transaction: its statements all see the database as it stood at its
        first read, never a write committed between two of them (a request read before a
        reviewer's approval and its decisions read after it would draw a card that tallies
        the approval under the version before it, and its next click would be refused).

        On SQLite an explicit ``BEGIN`` (the driver begins transactions only for writes, so
        each ``SELECT`` would otherwise see the latest commit); on PostgreSQL a ``REPEATABLE
        READ, READ ONLY`` transaction (``READ COMMITTED`` takes a snapshot per statement).
        """
        async with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                await conn.exec_driver_sql("BEGIN")
            else:
                await conn.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
            yield conn

    def insert(self, table: Any) -> Any:
        """The dialect's INSERT with ``on_conflict_do_*`` for ``table``."""
        return insert_for(self.dialect, table)

    async def upgrade(self, *, apart: bool = False) -> None:
        """Apply pending migrations; ``apart``: in a child process (``migrate.upgrade_apart``,
        for a long-running server, which then never loads alembic)."""
        await (migrate.upgrade_apart if apart else migrate.upgrade)(self.engine)

    async def check(self) -> dict[str, object]:
        """Readiness facts: reachable, and whether migrations are current."""
        try:
            async with self.reading() as conn:
                await conn.execute(text("SELECT 1"))
            current = await migrate.current_revision(self.engine)
        except (SQLAlchemyError, OSError) as exc:
            return {"reachable": False, "error": type(exc).__name__}
        head, ahead = migrate.head_revision(), migrate.is_ahead(current)
        return {
            "reachable": True,
            "revision": current,
            "head": head,
            "current": current == head or ahead,  # ahead: a newer release expanded the schema
            "ahead": ahead,
        }

    async def save_conversation(self, ref: ConversationRef) -> bool:
        """Remember ``ref`` as active (insert or refresh); True when it was not active before.

        Atomic: of two concurrent calls for one new conversation, exactly one returns True.
        """
        now = time.time()
        values = {
            "reference": self.cipher.encrypt(ref.model_dump_json()),
            "kind": ref.kind.value,
            "tenant_id": ref.tenant_id,
            "active": True,
            "updated_at": now,
        }
        insert = self.insert(conversations).values(id=ref.conversation_id, created_at=now, **values)
        reactivate = (
            update(conversations)
            .where(conversations.c.id == ref.conversation_id, conversations.c.active.is_(False))
            .values(**values)
        )
        refresh = (
            update(conversations).where(conversations.c.id == ref.conversation_id).values(**values)
        )
        async with self.writing() as conn:
            inserted = await conn.execute(insert.on_conflict_do_nothing(index_elements=["id"]))
            if inserted.rowcount:
                return True
            if (await conn.execute(reactivate)).rowcount:
                return True
            await conn.execute(refresh)
            return False

    async def deactivate_conversation(self, conversation_id: str) -> None:
        """Mark a conversation the bot was removed from; nothing more is sent there."""
        stmt = (
            update(conversations)
            .where(conversations.c.id == conversation_id)
            .values(active=False, updated_at=time.time())
        )
        async with self.writing() as conn:
            await conn.execute(stmt)

    async def conversation(self, conversation_id: str) -> Conversation | None:
        """The stored conversation, or ``None`` when Warden never met it."""
        rows = (await self.read(_CONVERSATION, {"id": conversation_id})).rows
        if not rows:
            return None
        stored, active = rows[0]
        reference = self.cipher.decrypt(stored, "conversations.reference", conversation_id)
        return Conversation(ConversationRef.model_validate_json(reference), bool(active))

    async def subscribe(self, sub: Subscription, *, by: str | None) -> None:
        """Subscribe a conversation (replacing its previous threshold)."""
        values = {
            "min_severity": sub.min_severity.value,
            "min_rank": sub.min_severity.rank,
            "created_by": by,
            "created_at": time.time(),
            "sources": sources_text(sub.sources),
        }
        stmt = self.insert(subscriptions).values(conversation_id=sub.conversation_id, **values)
        stmt = stmt.on_conflict_do_update(index_elements=["conversation_id"], set_=values)
        async with self.writing() as conn:
            await conn.execute(stmt)
            await admin_audit.record(
                conn,
                by or "unknown",
                "subscribe",
                sub.conversation_id,
                min_severity=sub.min_severity.value,
                **({} if sub.sources == SENTINEL_ONLY else {"sources": values["sources"]}),
            )

    async def unsubscribe(self, conversation_id: str, *, by: str | None = None) -> bool:
        """Drop a conversation's subscription; True when there was one."""
        stmt = subscriptions.delete().where(subscriptions.c.conversation_id == conversation_id)
        async with self.writing() as conn:
            result = await conn.execute(stmt)
            if result.rowcount:
                await admin_audit.record(conn, by or "unknown", "unsubscribe", conversation_id)
        return bool(result.rowcount)

    async def subscription(self, conversation_id: str) -> Subscription | None:
        """The conversation's subscription, if any."""
        stmt = select(subscriptions.c.min_severity, subscriptions.c.sources).where(
            subscriptions.c.conversation_id == conversation_id
        )
        async with self.reading() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            return None
        return Subscription(
            conversation_id=conversation_id,
            min_severity=Severity(row.min_severity),
            sources=frozenset(IncidentSource(name) for name in str(row.sources).split(",")),
        )

    async def incident(self, key: str) -> Incident | None:
        """The latest stored version of an incident."""
        payload = (await self.read(_INCIDENT, {"key": key})).scalar()
        if payload is None:
            return None
        return Incident.model_validate_json(self.cipher.decrypt(payload, "incidents.payload", key))

    async def posted_card(self, incident_key: str, conversation_id: str) -> PostedCard | None:
        """Where the incident's card sits in that conversation, if it was posted."""
        params = {"incident_key": incident_key, "conversation_id": conversation_id}
        rows = (await self.read(_POSTED_CARD, params)).rows
        return PostedCard(rows[0][0], rows[0][1]) if rows else None

    async def card_at(self, conversation_id: str, activity_id: str) -> str | None:
        """The incident whose card is the message ``activity_id`` of the conversation."""
        stmt = select(posted_cards.c.incident_key).where(
            posted_cards.c.conversation_id == conversation_id,
            posted_cards.c.activity_id == activity_id,
        )
        async with self.reading() as conn:
            key = (await conn.execute(stmt)).scalar()
        return None if key is None else str(key)

    async def conversation_status(self, conversation_id: str) -> ConversationStatus:
        """What ``status`` reports for one conversation."""
        cards = select(func.count(), func.max(posted_cards.c.updated_at)).where(
            posted_cards.c.conversation_id == conversation_id
        )
        jobs = (
            select(outbox.c.status, func.count())
            .where(outbox.c.conversation_id == conversation_id)
            .where(outbox.c.status.in_(("pending", "running", "dead", "quarantined")))
            .group_by(outbox.c.status)
        )
        async with self.reading() as conn:
            posted, last = (await conn.execute(cards)).one()
            counts = {row[0]: row[1] for row in await conn.execute(jobs)}
        return ConversationStatus(
            subscription=await self.subscription(conversation_id),
            incidents_posted=int(posted),
            last_delivery=None if last is None else _utc(last),
            outbox_pending=counts.get("pending", 0) + counts.get("running", 0),
            outbox_dead=counts.get("dead", 0) + counts.get("quarantined", 0),
        )


def _utc(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, tz=timezone.utc)


__all__ = ["Conversation", "ConversationKind", "PostedCard", "Store", "version_key"]
