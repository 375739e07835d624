"""The CMDB inventory in the store: configuration items synced from Azure, and their retirement.

A sync run writes each page of CIs and its checkpoint (``checkpoints`` row ``cmdb.sync``) in
one transaction (``store_page``), so a run killed half-way resumes after the last page that
is durable and writes every CI once (an upsert keyed by the CI id). A CI is stamped with the
run that last saw it; ``retire`` marks the CIs no run has seen for a number of runs as
retired (a CI seen again comes back), and never deletes one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from core.itsm import ConfigurationItem
from core.store.engine import insert_for
from core.store.schema import checkpoints
from core.store.schema_links import cmdb_cis
from core.store.store import Store

CHECKPOINT = "cmdb.sync"
"""The checkpoint that holds where the newest sync run stands (JSON)."""

_REFRESHED = ("name", "type", "owner", "env", "tags", "needs_tags", "last_seen_at")


@dataclass(frozen=True)
class StoredCi:
    """A CI as stored: the contract, whether it lacks tags, and when it was retired."""

    item: ConfigurationItem
    needs_tags: bool
    last_seen_run: int
    retired_at: datetime | None


def _row(
    store: Store, item: ConfigurationItem, run: int, now: float, sealed: dict[str, str]
) -> dict[str, Any]:
    """The ``cmdb_cis`` row of one CI seen by ``run``; ``sealed`` holds each owner sealed,
    and its tags are sealed too (an owner or a creator tag names a person)."""
    sealed_tags = store.cipher.encrypt(json.dumps(item.tags)) if item.tags else "[]"
    return {
        "ci_id": item.ci_id,
        "name": item.name,
        "type": item.type,
        "owner": sealed.get(item.owner or "", ""),
        "env": item.env,
        "tags": sealed_tags,
        "needs_tags": item.owner is None or item.env is None,
        "first_seen_at": now,
        "last_seen_at": item.last_seen_utc.timestamp(),
        "last_seen_run": run,
        "retired_at": None,
    }


def _sealed(store: Store, items: Sequence[ConfigurationItem]) -> dict[str, str]:
    """Each distinct owner of ``items`` sealed once (a page holds few people, many CIs)."""
    return {owner: store.cipher.encrypt(owner) for owner in {i.owner for i in items if i.owner}}


def _checkpoint(conn: Connection, value: str) -> None:
    """Move the sync's checkpoint to ``value`` on ``conn``."""
    values = {"value": value, "updated_at": time.time()}
    stmt: Any = insert_for(conn.dialect.name, checkpoints).values(name=CHECKPOINT, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=values))


async def store_page(
    store: Store, items: Sequence[ConfigurationItem], run: int, checkpoint: str
) -> None:
    """Upsert ``items`` as seen by ``run`` and move the checkpoint, in one transaction."""
    unique = list({item.ci_id: item for item in items}.values())

    def write(conn: Connection, _: None) -> None:
        now = time.time()
        sealed = _sealed(store, unique)
        if unique:
            stmt: Any = insert_for(conn.dialect.name, cmdb_cis)
            refreshed = {name: stmt.excluded[name] for name in _REFRESHED}
            stmt = stmt.on_conflict_do_update(
                index_elements=["ci_id"],
                set_={**refreshed, "last_seen_run": run, "retired_at": None},
            )
            conn.execute(stmt, [_row(store, item, run, now, sealed) for item in unique])
        _checkpoint(conn, checkpoint)

    await store.run_write(write, None)


def _stale(run: int, retire_after: int) -> Any:
    """CIs not retired whose last sighting is ``retire_after`` or more runs before ``run``."""
    return and_(cmdb_cis.c.retired_at.is_(None), cmdb_cis.c.last_seen_run <= run - retire_after)


async def stale_ids(store: Store, run: int, retire_after: int) -> list[str]:
    """The ids ``finish_run`` would retire now (to retire them elsewhere first)."""
    stmt = select(cmdb_cis.c.ci_id).where(_stale(run, retire_after)).order_by(cmdb_cis.c.ci_id)
    async with store.reading() as conn:
        return [row.ci_id for row in (await conn.execute(stmt)).all()]


async def finish_run(store: Store, run: int, retire_after: int, checkpoint: str) -> list[str]:
    """Retire the CIs unseen by the last ``retire_after`` runs up to ``run`` and move the
    checkpoint, in one transaction; the ids retired now."""

    def write(conn: Connection, _: None) -> list[str]:
        stale = _stale(run, retire_after)
        ids = [row.ci_id for row in conn.execute(select(cmdb_cis.c.ci_id).where(stale))]
        if ids:
            conn.execute(update(cmdb_cis).where(stale).values(retired_at=time.time()))
        _checkpoint(conn, checkpoint)
        return ids

    return await store.run_write(write, None)


async def cis(
    store: Store,
    *,
    ids: Sequence[str] | None = None,
    needing_tags: bool = False,
    retired: bool | None = None,
    limit: int | None = None,
) -> list[StoredCi]:
    """Stored CIs by id: those in ``ids``, lacking tags, retired or not (None: either)."""
    stmt = select(cmdb_cis).order_by(cmdb_cis.c.ci_id)
    if ids is not None:
        stmt = stmt.where(cmdb_cis.c.ci_id.in_(list(ids)))
    if needing_tags:
        stmt = stmt.where(cmdb_cis.c.needs_tags.is_(True))
    if retired is not None:
        column = cmdb_cis.c.retired_at
        stmt = stmt.where(column.is_not(None) if retired else column.is_(None))
    if limit is not None:
        stmt = stmt.limit(limit)
    async with store.reading() as conn:
        rows = (await conn.execute(stmt)).all()
    return [_stored(store, row) for row in rows]


async def counts(store: Store) -> dict[str, int]:
    """How many CIs are ``active``, ``retired`` and active but ``needing_tags``."""
    retired = cmdb_cis.c.retired_at.is_not(None)
    stmt = select(
        func.count().filter(~retired),
        func.count().filter(retired),
        func.count().filter(and_(~retired, cmdb_cis.c.needs_tags.is_(True))),
    ).select_from(cmdb_cis)
    async with store.reading() as conn:
        active, gone, untagged = (await conn.execute(stmt)).one()
    return {"active": int(active), "retired": int(gone), "needing_tags": int(untagged)}


def _stored(store: Store, row: Any) -> StoredCi:
    """The CI in a ``cmdb_cis`` row (its sealed owner decrypted)."""
    owner = store.cipher.decrypt(row.owner, "cmdb_cis.owner", str(row.ci_id))
    item = ConfigurationItem(
        ci_id=row.ci_id,
        name=row.name,
        type=row.type,
        owner=owner or None,
        env=row.env,
        tags=json.loads(store.cipher.decrypt(row.tags, "cmdb_cis.tags", str(row.ci_id))),
        last_seen_utc=datetime.fromtimestamp(float(row.last_seen_at), UTC),
    )
    retired = None if row.retired_at is None else datetime.fromtimestamp(row.retired_at, UTC)
    return StoredCi(item, bool(row.needs_tags), int(row.last_seen_run), retired)


async def summary(store: Store) -> dict[str, Any]:
    """The newest sync run as the checkpoint holds it, and the CI counts (for ``/readyz``,
    ``status`` and ``cmdb status``): run, state, timestamps, CIs read, unresolved owners,
    the error that stopped it, and the ``active``/``retired``/``needing_tags`` counts."""
    async with store.reading() as conn:
        saved = await conn.scalar(
            select(checkpoints.c.value).where(checkpoints.c.name == CHECKPOINT)
        )
    run: dict[str, Any] = {}
    if saved is not None:
        try:
            loaded = json.loads(saved)
        except ValueError:
            loaded = None
        run = loaded if isinstance(loaded, dict) else {}
    state = "never run" if not run else "finished" if run.get("finished_at") else "unfinished"
    if state == "unfinished" and run.get("error"):
        state = "failed"
    return {
        "state": state,
        "run": run.get("run"),
        "started_at": run.get("started_at"),
        "finished_at": run.get("finished_at"),
        "read": run.get("read", 0),
        "owners_unresolved": run.get("owners_unresolved", 0),
        "error": run.get("error"),
        **await counts(store),
    }
