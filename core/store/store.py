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
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Generic, TypeVar, cast

import asyncpg
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
from core.store.engine import create_engine, create_sqlite_writer, insert_for
from core.store.group_commit import GroupCommit
from core.store.schema import conversations, outbox, posted_cards, subscriptions
from core.store.sql import Rows, Statement

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


READ_WAIT_SECONDS = 1.0
"""The longest a SQLite lookup on the event loop's thread waits for a lock (WAL readers
wait only while the log is being reset); past it the store is unavailable, as when busy."""

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


@dataclass(frozen=True)
class _Write(Generic[R]):
    """A write queued for the writer thread: ``work(conn, arg)``."""

    work: Callable[[Connection, Any], R]
    arg: Any


@dataclass(frozen=True)
class _Written(Generic[R]):
    """What a queued write came to: its result, or the error its work raised."""

    value: R | None
    error: Exception | None = None


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
        self._writer = writer
        self._replica_lock: IO[str] | None = None
        self._writer_thread = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
            if writer is not None
            else None
        )
        self._writes: GroupCommit[_Write[Any], _Written[Any]] = GroupCommit(self._write_batch)
        self._reader: sqlite3.Connection | None = None
        self._timeout = timeout

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
        database = self.engine.url.database
        if self.dialect != "sqlite" or not database or database == ":memory:":
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
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._replica_lock is not None:
            self._replica_lock.close()
            self._replica_lock = None
        if self._writer is not None and self._writer_thread is not None:
            await self._writes.close()
            self._writer_thread.shutdown(wait=True)
            self._writer.dispose()

    async def run_write(self, work: Callable[[Connection, A], R], arg: A) -> R:
        """Run synchronous ``work(conn, arg)`` as one atomic write, committed on return.

        On PostgreSQL it runs in a transaction of its own on the async connection. On SQLite
        it runs on the writer thread, in one call (one hop, not one per statement), grouped
        with the writes that were queued while the previous group committed: each in a
        savepoint of the group's transaction, so a work that raises is undone alone (its
        caller gets the error) and the others commit together, one ``COMMIT`` for all.
        """
        if self._writer is None or self._writer_thread is None:
            async with self.writing() as conn:
                return await conn.run_sync(work, arg)
        try:
            written = await self._writes.submit(_Write(work, arg))
            if written.error is not None:
                raise written.error  # its own failure, the group's commit went on
        except OperationalError as exc:  # the group's commit, or this write's statement
            raise StoreUnavailable(f"store write failed: {exc.orig!r}") from exc
        return cast(R, written.value)

    async def _write_batch(self, writes: Sequence[_Write[Any]]) -> list[_Written[Any]]:
        """One group of writes in one transaction on the writer thread."""
        assert self._write_lock is not None
        loop = asyncio.get_running_loop()
        async with self._write_lock:
            return await loop.run_in_executor(self._writer_thread, self._write_sync, writes)

    def _write_sync(self, writes: Sequence[_Write[Any]]) -> list[_Written[Any]]:
        assert self._writer is not None
        if len(writes) == 1:  # alone: in a transaction of its own, as it always was
            try:
                with self._writer.begin() as conn:
                    return [_Written(writes[0].work(conn, writes[0].arg))]
            except OperationalError:
                raise  # the store failed: its caller is told it is unavailable
            except Exception as exc:  # noqa: BLE001 - rolled back, handed to its caller
                return [_Written(None, exc)]
        done: list[_Written[Any]] = []
        with self._writer.begin() as conn:
            for write in writes:
                try:
                    with conn.begin_nested():
                        done.append(_Written(write.work(conn, write.arg)))
                except Exception as exc:  # noqa: BLE001 - undone alone, handed to its caller
                    done.append(_Written(None, exc))
        return done

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
        """The rows of one short read (a lookup by key), at a fraction of ``reading``'s cost.

        On SQLite it runs on this thread's own read-only connection, with no thread hop: a
        lookup in WAL mode takes microseconds and never waits for the writer, where a hop to
        aiosqlite's thread for each statement, fetch and rollback cost a millisecond of CPU.
        On PostgreSQL it goes straight to asyncpg on a pooled connection. ``StoreUnavailable``
        when the database cannot be reached.
        """
        if self.dialect == "sqlite":
            try:
                reader = self._sqlite_reader()
                if reader is not None:
                    return statement.run(reader, params)
            except sqlite3.OperationalError as exc:  # cannot open, locked, read-only
                raise StoreUnavailable(f"store read failed: {exc!r}") from exc
            async with self.reading() as conn:  # in memory: only the pool's connection has it
                rows = (await conn.execute(text(statement.sql), params)).all()
            return Rows(rows, len(rows))
        try:
            async with self.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                try:
                    return await statement.fetch(raw.driver_connection, params)
                except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError) as exc:
                    raise StoreUnavailable(f"store read failed: {exc!r}") from exc
        except (SQLAlchemyError, OSError) as exc:  # no server, no such database
            raise StoreUnavailable(f"the store cannot be reached: {exc!r}") from exc

    def _sqlite_reader(self) -> sqlite3.Connection | None:
        """The read-only connection of ``read`` on a SQLite file (opened on first use)."""
        if self._reader is not None:
            return self._reader
        database = self.engine.url.database
        if not database or database == ":memory:":
            return None  # another connection would open another, empty database
        reader = sqlite3.connect(  # WAL readers wait only in rare moments; the loop never long
            database,
            timeout=min(self._timeout, READ_WAIT_SECONDS),
            isolation_level=None,
            check_same_thread=False,
        )
        reader.execute("PRAGMA query_only = ON")
        self._reader = reader
        return reader

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

    async def upgrade(self) -> None:
        """Apply pending migrations."""
        await migrate.upgrade(self.engine)

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
