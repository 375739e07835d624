"""The configuration items (CMDB CIs) matching an incident's entities, in the store.

A lookup is asked for when an incident's card is first posted and again when its alert count
changes (``ask_lookup``: the marker in ``incident_ci_lookups`` and the ``itsm.cmdb`` job, in
one transaction, at most once per alert count). The job stores what it found
(``store_found``): the incident's set is replaced whole, an empty set included, so nothing is
looked up again until the next trigger; when the set changed, every card showing the incident
is redrawn in the same transaction. ``changed_at`` only grows, so the card's version
(``CiSet.stamp``) grows with every change, a set that became empty included.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from core.itsm import ConfigurationItem
from core.store import outbox
from core.store.cards import redraw_cards
from core.store.engine import insert_for
from core.store.schema import outbox as outbox_table
from core.store.schema_links import incident_ci_lookups, incident_cis
from core.store.sql import Rows, Statement
from core.store.store import Store

CMDB_JOB = "itsm.cmdb"
"""Job kind: look the incident's host/IP/resource entities up in the CMDB; store the CIs."""

_LOOKUP_AND_CIS = (
    select(
        incident_ci_lookups.c.alert_count,
        incident_ci_lookups.c.changed_at,
        incident_cis,
    )
    .select_from(
        incident_ci_lookups.outerjoin(
            incident_cis, incident_cis.c.incident_key == incident_ci_lookups.c.incident_key
        )
    )
    .where(incident_ci_lookups.c.incident_key == bindparam("key"))
)
_CIS_OF = select(incident_cis).where(incident_cis.c.incident_key == bindparam("key"))
_CI_COLUMNS = tuple(column.name for column in incident_cis.c)
CIS_OF = Statement(
    f"SELECT {', '.join(_CI_COLUMNS)} FROM incident_cis "  # noqa: S608 - its own columns
    "WHERE incident_key = :key"
)
"""An incident's CIs (``key``), straight on the driver (read on every click)."""


def cmdb_ordering_key(incident_key: str) -> str:
    """The lookups of one incident run one at a time, in the order they were asked."""
    return f"cmdb|{incident_key}"


@dataclass(frozen=True)
class CiSet:
    """An incident's CIs as stored, and what its newest lookup was asked for."""

    items: list[ConfigurationItem] = field(default_factory=list)
    alert_count: int = 0
    """The alert count the newest lookup was asked for."""
    changed_at: float | None = None
    """When the set last changed (None: no lookup has stored one yet)."""

    @property
    def stamp(self) -> str | None:
        """What the CIs add to the incident's card version (None before any set changed)."""
        if self.changed_at is None:
            return None
        return f"{int(self.changed_at * 1000):015d}"


async def ci_set(store: Store, incident_key: str) -> CiSet | None:
    """The incident's CIs and lookup marker; None when no lookup was ever asked for."""
    async with store.reading() as conn:
        rows = (await conn.execute(_LOOKUP_AND_CIS, {"key": incident_key})).all()
    if not rows:
        return None
    items = [_item(store, row) for row in rows if row.ci_id is not None]
    return CiSet(_ordered(items), int(rows[0].alert_count), rows[0].changed_at)


def stored_cis(store: Store, rows: Rows) -> list[ConfigurationItem]:
    """The CIs in the rows ``CIS_OF`` read, in the order a card lists them."""
    return _ordered([_item(store, row) for row in rows.named(_CI_COLUMNS)])


async def ask_lookup(store: Store, incident_key: str, alert_count: int) -> bool:
    """Ask for a CMDB lookup of the incident at ``alert_count`` alerts; False when one was
    asked for that count already (nothing written).

    One transaction: the marker (a conditional upsert, so concurrent askers enqueue one job)
    and the ``itsm.cmdb`` job.
    """
    row = outbox.job_row(
        CMDB_JOB,
        cmdb_ordering_key(incident_key),
        {"incident_key": incident_key, "alert_count": alert_count},
        cipher=store.cipher,
    )

    def write(conn: Connection, _: None) -> bool:
        now = time.time()
        stmt: Any = insert_for(conn.dialect.name, incident_ci_lookups).values(
            incident_key=incident_key, alert_count=alert_count, asked_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["incident_key"],
            set_={"alert_count": alert_count, "asked_at": now},
            where=incident_ci_lookups.c.alert_count != alert_count,
        )
        if not conn.execute(stmt).rowcount:
            return False
        conn.execute(outbox_table.insert(), [row])
        return True

    return await store.run_write(write, None)


async def store_found(store: Store, incident_key: str, items: Sequence[ConfigurationItem]) -> bool:
    """Replace the incident's CIs with ``items`` (deduplicated by CI id); True when the set
    changed, and then every card showing the incident is redrawn in the same transaction.

    A change is one the CI contract shows, but for ``lastSeenUtc`` (a discovery run alone
    redraws no card); the stored rows are refreshed either way.
    """
    unique = list({item.ci_id: item for item in items}.values())

    def write(conn: Connection, _: None) -> bool:
        now = time.time()
        before = [_item(store, row) for row in conn.execute(_CIS_OF, {"key": incident_key})]
        changed = _identity(before) != _identity(unique)
        conn.execute(delete(incident_cis).where(incident_cis.c.incident_key == incident_key))
        if unique:
            conn.execute(incident_cis.insert(), [_row(store, incident_key, i, now) for i in unique])
        marker = conn.execute(
            select(incident_ci_lookups.c.changed_at).where(
                incident_ci_lookups.c.incident_key == incident_key
            )
        ).first()
        values: dict[str, Any] = {"looked_up_at": now}
        if changed:
            previous = marker.changed_at if marker is not None else None
            # only grows, even if this replica's clock is behind the one that wrote before
            values["changed_at"] = now if previous is None else max(now, previous + 0.001)
        if marker is None:
            conn.execute(
                incident_ci_lookups.insert().values(
                    incident_key=incident_key, alert_count=0, asked_at=now, **values
                )
            )
        else:
            conn.execute(
                update(incident_ci_lookups)
                .where(incident_ci_lookups.c.incident_key == incident_key)
                .values(**values)
            )
        if changed:
            redraw_cards(conn, store, incident_key)
        return changed

    return await store.run_write(write, None)


def _identity(items: Sequence[ConfigurationItem]) -> set[tuple[Any, ...]]:
    """What makes two sets of CIs the same: every contract field but ``lastSeenUtc``."""
    return {(i.ci_id, i.name, i.type, i.owner, i.env, tuple(sorted(i.tags))) for i in items}


def _ordered(items: list[ConfigurationItem]) -> list[ConfigurationItem]:
    """CIs in the order a card lists them: by name, then id."""
    return sorted(items, key=lambda i: (i.name.lower(), i.ci_id))


def _row(store: Store, incident_key: str, item: ConfigurationItem, now: float) -> dict[str, Any]:
    """The ``incident_cis`` row of one CI (its owner sealed)."""
    return {
        "incident_key": incident_key,
        "ci_id": item.ci_id,
        "name": item.name,
        "type": item.type,
        "owner": store.cipher.encrypt(item.owner or ""),
        "env": item.env,
        "tags": store.cipher.encrypt(json.dumps(item.tags)) if item.tags else "[]",
        "last_seen_at": item.last_seen_utc.timestamp(),
        "found_at": now,
    }


def _item(store: Store, row: Any) -> ConfigurationItem:
    """The CI in an ``incident_cis`` row (its sealed owner decrypted)."""
    owner = store.cipher.decrypt(row.owner, "incident_cis.owner", str(row.id))
    return ConfigurationItem(
        ci_id=row.ci_id,
        name=row.name,
        type=row.type,
        owner=owner or None,
        env=row.env,
        tags=json.loads(store.cipher.decrypt(row.tags, "incident_cis.tags", str(row.id))),
        last_seen_utc=datetime.fromtimestamp(float(row.last_seen_at), UTC),
    )
