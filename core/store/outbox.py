"""The outbox: durable jobs for every outbound call, written with the change that causes them.

A job is ``pending`` until a worker claims it (``running``, with a lease), then ``done``, or
``pending`` again with a later ``next_attempt_at``. A job that failed for a reason retrying
cannot fix is ``quarantined`` at once; one that spent its attempts is ``dead``. Both wait in
the dead-letter queue (DLQ) with their reason until an operator replays or purges them. Jobs that
share an ``ordering_key`` run one at a time, oldest first, so an update never overtakes the
post it updates. A lease that runs out (the worker died) makes the job claimable again.
A worker renews the leases of the jobs it runs (``extend``), writes a job's outcome only while
it still holds its lease, and a handler about to do what must not happen twice (a card post)
first checks in its own commit that the lease is still its own (``hold``): a worker that
stalled past its lease, while another claimed the job, stops instead of doing the work again.
A job's payload is stored encrypted (``core.crypto``); one that no key can decrypt is
quarantined when claimed, with the reason, instead of stalling the outbox.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import aliased

from core.crypto import PayloadCipher, UnreadablePayload
from core.store.schema import outbox, webhook_receipts
from core.store.sql import Statement
from core.store.store import Store

log = logging.getLogger(__name__)

PENDING, RUNNING, DONE, DEAD = "pending", "running", "done", "dead"
QUARANTINED = "quarantined"
UNFINISHED = (PENDING, RUNNING)
DLQ = (DEAD, QUARANTINED)
# The claim's statements, built once: a statement object keeps its cache key and compiled
# form, and a worker claims several times a card (bound parameters carry the values).
_EARLIER = aliased(outbox)
_CLAIM = (
    select(outbox)
    .where(
        or_(
            and_(outbox.c.status == PENDING, outbox.c.next_attempt_at <= bindparam("now")),
            and_(outbox.c.status == RUNNING, outbox.c.lease_until < bindparam("now")),
        ),
        ~exists().where(
            _EARLIER.c.ordering_key == outbox.c.ordering_key,
            _EARLIER.c.id < outbox.c.id,
            _EARLIER.c.status.in_(UNFINISHED),
        ),
        outbox.c.id.not_in(bindparam("running", expanding=True)),
    )
    .order_by(outbox.c.id)
    .limit(bindparam("limit"))
)
_CLAIM_PG = _CLAIM.with_for_update(skip_locked=True, of=outbox)
_START = (
    update(outbox)
    .where(outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(status=RUNNING, lease_until=bindparam("until"), updated_at=bindparam("now"))
)
_QUARANTINE = (
    update(outbox)
    .where(outbox.c.id == bindparam("job_id"))
    .values(
        status=QUARANTINED,
        lease_until=None,
        last_error=bindparam("error"),
        updated_at=bindparam("now"),
    )
)
_BY_ID = outbox.c.id == bindparam("job_id")
_BY_LEASE = and_(
    _BY_ID,
    outbox.c.status == RUNNING,
    outbox.c.lease_until.in_(bindparam("tokens", expanding=True)),
)
"""A job's row while it runs under one of the lease's tokens (``Lease.tokens``)."""
_HOLD = update(outbox).where(_BY_LEASE).values(lease_until=outbox.c.lease_until)
"""``hold``'s statement: a card's writes each take it."""
_NEXT_DUE = Statement("SELECT min(next_attempt_at) FROM outbox WHERE status = :status")


class LeaseLost(Exception):
    """Another worker holds this job now: its lease ran out while this one was running it."""


@dataclass
class Lease:
    """The lease a worker holds on a claimed job: the ``lease_until`` it wrote (its token:
    another worker's claim writes a different one), and the one a renewal is writing."""

    until: float
    renewing: float | None = None

    def tokens(self) -> list[float]:
        """The values of ``lease_until`` that are this worker's own."""
        return [self.until] if self.renewing is None else [self.until, self.renewing]


@dataclass(frozen=True)
class Job:
    """One outbox job as a worker sees it, with the lease it was claimed under."""

    id: int
    kind: str
    ordering_key: str
    conversation_id: str | None
    payload: dict[str, Any]
    attempts: int
    lease: Lease | None = field(default=None, compare=False)


@dataclass(frozen=True)
class JobRow:
    """One outbox job as an operator sees it (``outbox list``)."""

    id: int
    kind: str
    status: str
    attempts: int
    conversation_id: str | None
    payload: dict[str, Any]
    last_error: str | None
    next_attempt_at: datetime
    updated_at: datetime


def job_row(
    kind: str,
    ordering_key: str,
    payload: dict[str, Any],
    *,
    cipher: PayloadCipher,
    conversation_id: str | None = None,
) -> dict[str, Any]:
    """The row of a new, due job; insert it in the transaction of the change that causes it.

    ``cipher`` (the store's) encrypts the payload.
    """
    now = time.time()
    return {
        "kind": kind,
        "ordering_key": ordering_key,
        "conversation_id": conversation_id,
        "payload": cipher.encrypt(json.dumps(payload, separators=(",", ":"))),
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "lease_until": None,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
    }


async def claim(
    store: Store, limit: int, lease_seconds: float, running: Collection[int] = ()
) -> list[Job]:
    """Claim up to ``limit`` due jobs, at most one per ordering key, oldest first.

    ``running``: the ids of jobs this worker is still running; never claimed again here,
    even when their lease ran out (a busy host may renew it late).
    """
    now = time.time()
    stmt = _CLAIM_PG if store.dialect == "postgresql" else _CLAIM
    params = {"now": now, "running": list(running), "limit": limit}

    def write(conn: Connection, _: None) -> list[Job]:
        """One transaction, in one hop to SQLite's writer thread (claims are frequent)."""
        rows = conn.execute(stmt, params).all()
        jobs, unreadable = _jobs(store.cipher, rows, now + lease_seconds)
        if jobs:
            ids = [job.id for job in jobs]
            conn.execute(_START, {"ids": ids, "until": now + lease_seconds, "now": now})
        for job_id, error in unreadable.items():
            conn.execute(_QUARANTINE, {"job_id": job_id, "error": error, "now": now})
        return jobs

    return await store.run_write(write, None)


def _jobs(cipher: PayloadCipher, rows: Any, until: float) -> tuple[list[Job], dict[int, str]]:
    """The claimed rows as jobs, and the reason for each whose payload cannot be read."""
    jobs, unreadable = [], {}
    for r in rows:
        try:
            payload = json.loads(cipher.decrypt(r.payload, "outbox.payload", r.id))
        except UnreadablePayload as exc:
            log.warning("outbox job %s quarantined: %s", r.id, exc)
            unreadable[r.id] = f"fail: {exc}"
            continue
        lease = Lease(until)
        jobs.append(
            Job(r.id, r.kind, r.ordering_key, r.conversation_id, payload, r.attempts, lease)
        )
    return jobs, unreadable


def _held(job_id: int, lease: Lease | None) -> tuple[ColumnElement[bool], dict[str, Any]]:
    """The job's row, while ``lease`` (when given) is still the one it is running under: the
    condition and the values it binds."""
    if lease is None:
        return _BY_ID, {"job_id": job_id}
    return _BY_LEASE, {"job_id": job_id, "tokens": lease.tokens()}


async def extend(store: Store, jobs: list[Job], lease_seconds: float) -> list[Job]:
    """Renew the leases of running ``jobs`` for ``lease_seconds`` from now; returns the jobs
    whose lease was already lost (another worker claimed them). A job whose outcome was just
    written is neither renewed nor lost."""
    until = time.time() + lease_seconds
    held = [job for job in jobs if job.lease is not None]
    for job in held:
        assert job.lease is not None
        job.lease.renewing = until

    def write(conn: Connection, _: None) -> list[Job]:
        lost = []
        for job in held:
            where, bound = _held(job.id, job.lease)
            answer = conn.execute(update(outbox).where(where).values(lease_until=until), bound)
            if answer.rowcount != 1 and _claimed_elsewhere(conn, job.id):
                lost.append(job)
        return lost

    try:
        lost = await store.run_write(write, None)
    finally:
        for job in held:
            assert job.lease is not None
            job.lease.renewing = None
    for job in held:
        if job not in lost:
            assert job.lease is not None
            job.lease.until = until
    return lost


def _claimed_elsewhere(conn: Connection, job_id: int) -> bool:
    """True when the job runs under another lease (not merely finished by this worker)."""
    status = conn.execute(select(outbox.c.status).where(outbox.c.id == job_id)).scalar()
    return status == RUNNING


def hold(conn: Connection, job: Job) -> None:
    """In the caller's transaction (a ``Store.run_write`` work): check that ``job``'s lease is
    still this worker's (and lock its row until the commit); ``LeaseLost`` when another
    worker has claimed it."""
    if job.lease is None:
        return
    if conn.execute(_HOLD, _held(job.id, job.lease)[1]).rowcount != 1:
        raise LeaseLost(f"outbox job {job.id} is claimed by another worker")


async def finish(store: Store, job_id: int, *, lease: Lease | None = None) -> bool:
    """Mark a job done (only while ``lease``, when given, is still held); False if not."""
    return await _set(store, job_id, lease, status=DONE, lease_until=None, last_error=None)


async def reschedule(
    store: Store,
    job_id: int,
    attempts: int,
    delay: float,
    error: str,
    *,
    lease: Lease | None = None,
) -> bool:
    """Put a failed job back, to be tried again after ``delay`` seconds."""
    return await _set(
        store,
        job_id,
        lease,
        status=PENDING,
        attempts=attempts,
        next_attempt_at=time.time() + delay,
        lease_until=None,
        last_error=error,
    )


async def bury(
    store: Store, job_id: int, attempts: int, error: str, *, lease: Lease | None = None
) -> bool:
    """Mark a job dead (attempts spent) with the reason; it waits in the DLQ."""
    return await _set(
        store, job_id, lease, status=DEAD, attempts=attempts, lease_until=None, last_error=error
    )


async def quarantine(
    store: Store, job_id: int, attempts: int, error: str, *, lease: Lease | None = None
) -> bool:
    """Set a job aside at once (retrying cannot fix it) with the reason; it waits in the DLQ."""
    return await _set(
        store,
        job_id,
        lease,
        status=QUARANTINED,
        attempts=attempts,
        lease_until=None,
        last_error=error,
    )


async def defer(
    store: Store,
    job_id: int,
    delay: float,
    *,
    reason: str | None = None,
    lease: Lease | None = None,
) -> bool:
    """Put a claimed job back for ``delay`` seconds without counting an attempt (pacing, or a
    connector that is not there yet: ``reason`` then says why it waits, for ``outbox list``)."""
    values: dict[str, Any] = {"last_error": reason} if reason is not None else {}
    return await _set(
        store,
        job_id,
        lease,
        status=PENDING,
        next_attempt_at=time.time() + delay,
        lease_until=None,
        **values,
    )


async def _set(store: Store, job_id: int, lease: Lease | None, **values: Any) -> bool:
    """Write a job's outcome; False when ``lease`` is no longer held (nothing written)."""
    values["updated_at"] = time.time()
    where, bound = _held(job_id, lease)
    stmt = update(outbox).where(where).values(**values)

    def write(conn: Connection, _: None) -> int:
        return int(conn.execute(stmt, bound).rowcount)

    return bool(await store.run_write(write, None))  # one hop to SQLite's writer thread


async def list_jobs(
    store: Store, status: str | tuple[str, ...] | None = None, limit: int = 100
) -> list[JobRow]:
    """The newest jobs, optionally of one status (or any of several)."""
    stmt = select(outbox).order_by(outbox.c.id.desc()).limit(limit)
    if isinstance(status, str):
        stmt = stmt.where(outbox.c.status == status)
    elif status:
        stmt = stmt.where(outbox.c.status.in_(status))
    async with store.reading() as conn:
        rows = (await conn.execute(stmt)).all()
    return [_job_row(store.cipher, r) for r in rows]


async def get_job(store: Store, job_id: int) -> JobRow | None:
    """One job, whatever its status."""
    async with store.reading() as conn:
        row = (await conn.execute(select(outbox).where(outbox.c.id == job_id))).first()
    return None if row is None else _job_row(store.cipher, row)


def _job_row(cipher: PayloadCipher, r: Any) -> JobRow:
    return JobRow(
        r.id,
        r.kind,
        r.status,
        r.attempts,
        r.conversation_id,
        json.loads(cipher.decrypt(r.payload, "outbox.payload", r.id)),
        r.last_error,
        datetime.fromtimestamp(r.next_attempt_at, tz=timezone.utc),
        datetime.fromtimestamp(r.updated_at, tz=timezone.utc),
    )


async def counts(store: Store) -> dict[str, int]:
    """How many jobs are in each status."""
    stmt = select(outbox.c.status, func.count()).group_by(outbox.c.status)
    async with store.reading() as conn:
        return {row[0]: int(row[1]) for row in await conn.execute(stmt)}


async def next_due(store: Store) -> float | None:
    """When the earliest waiting job falls due (UNIX seconds), or ``None``."""
    value = (await store.read(_NEXT_DUE, {"status": PENDING})).scalar()
    return None if value is None else float(value)


async def oldest_pending_age(store: Store) -> float:
    """Seconds since the oldest waiting job was created (0 when none waits)."""
    stmt = select(func.min(outbox.c.created_at)).where(outbox.c.status.in_(UNFINISHED))
    async with store.reading() as conn:
        value = (await conn.execute(stmt)).scalar()
    return 0.0 if value is None else max(0.0, time.time() - float(value))


async def prune(store: Store, older_than: float) -> int:
    """Delete finished jobs, and webhook receipts, last touched before ``older_than`` (UNIX s).

    Receipts only need to outlive the webhook's ±5-minute replay window; done jobs are kept
    a while for operators. Returns how many rows went.
    """
    jobs = outbox.delete().where(outbox.c.status == DONE, outbox.c.updated_at < older_than)
    receipts = webhook_receipts.delete().where(webhook_receipts.c.received_at < older_than)
    async with store.writing() as conn:
        removed = (await conn.execute(jobs)).rowcount + (await conn.execute(receipts)).rowcount
    return int(removed)
