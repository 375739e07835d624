"""ARM deployments in the store: those read, what they touched, links to changes, and the
Azure resources of each incident.

Deployments are read by ``arm.deployments`` outbox jobs, never in a click's path: one per
incident (its resources, from its entities, and their groups' deployments; asked for when the
incident's card is first drawn, ``ask_incident``) and one per resource group (after a CMDB
sync, ``ask_groups``). ``store_deployments`` upserts what a job read; a deployment new to
the store that touched a resource of an incident moves that incident's ``changed_at`` and
redraws its cards, in the same transaction, as ``store_incident_resources`` does when an
incident's resources change. ``changed_at`` only grows, so a card's version grows with it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update

from core.deployments import Deployment, DeploymentLink, DeploymentNote, resource_group_of
from core.store import outbox
from core.store.cards import redraw_cards
from core.store.engine import insert_for
from core.store.schema import outbox as outbox_table
from core.store.schema_links import (
    arm_deployments,
    cmdb_cis,
    deployment_links,
    deployment_targets,
    incident_resource_lookups,
    incident_resources,
)
from core.store.store import Store

DEPLOYMENTS_JOB = "arm.deployments"
"""Job kind: read the deployments of an incident's resources, or of one resource group."""


def deployments_ordering_key(subject: str) -> str:
    """The reads of one incident (or group) run one at a time, in the order asked."""
    return f"deploy|{subject}"


@dataclass(frozen=True)
class IncidentDeployments:
    """What an incident's card shows of its Azure side: resources and the latest deployment."""

    resources: list[str] = field(default_factory=list)
    note: DeploymentNote | None = None
    asked: bool = False
    """True once a read was asked for (a card job asks once)."""
    changed_at: float | None = None
    twin_asked: bool = False
    """True once a read of the Sentinel twin (``read_key``) was asked for."""

    @property
    def stamp(self) -> str | None:
        """What this adds to the card's version (None before any change)."""
        if self.changed_at is None:
            return None
        return f"{int(self.changed_at * 1000):015d}"


def _ts(moment: datetime) -> float:
    return moment.timestamp()


def _when(value: float) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)


async def ask_incident(store: Store, incident_key: str, read_key: str | None = None) -> bool:
    """Ask for a read of the incident's resources and deployments; False when one was asked
    for already (nothing written). The marker and the job are one transaction.

    ``read_key`` names the Sentinel incident to read them from when the card is kept under
    another key (a Defender XDR incident whose Sentinel twin arrived later): its marker is
    then the Sentinel key's, so the twin is read once, and what is read is stored under
    ``incident_key``.
    """
    payload = {"incident_key": incident_key}
    if read_key is not None and read_key != incident_key:
        payload["read_key"] = read_key
    row = outbox.job_row(
        DEPLOYMENTS_JOB, deployments_ordering_key(incident_key), payload, cipher=store.cipher
    )
    marker_key = payload.get("read_key", incident_key)

    def write(conn: Connection, _: None) -> bool:
        stmt: Any = insert_for(conn.dialect.name, incident_resource_lookups).values(
            incident_key=marker_key, asked_at=time.time()
        )
        if not conn.execute(stmt.on_conflict_do_nothing()).rowcount:
            return False
        conn.execute(outbox_table.insert(), [row])
        return True

    return await store.run_write(write, None)


async def ask_groups(store: Store, groups: Sequence[str]) -> int:
    """One read job per resource group id (lower-cased, each once); how many were queued."""
    unique = sorted({group.lower() for group in groups})
    rows = [
        outbox.job_row(
            DEPLOYMENTS_JOB,
            deployments_ordering_key(group),
            {"resource_group": group},
            cipher=store.cipher,
        )
        for group in unique
    ]

    def write(conn: Connection, _: None) -> int:
        if rows:
            conn.execute(outbox_table.insert(), rows)
        return len(rows)

    return await store.run_write(write, None)


async def cmdb_groups(store: Store) -> list[str]:
    """The resource groups (lower-case ids) of the active CMDB CIs."""
    stmt = select(cmdb_cis.c.ci_id).where(cmdb_cis.c.retired_at.is_(None))
    async with store.reading() as conn:
        ids = [row.ci_id for row in (await conn.execute(stmt)).all()]
    return sorted({g for g in (resource_group_of(i) for i in ids) if g is not None})


def _bump(conn: Connection, store: Store, incident_key: str, now: float) -> None:
    """Move the incident's ``changed_at`` forward (only ever) and redraw its cards."""
    marker = conn.execute(
        select(incident_resource_lookups.c.changed_at).where(
            incident_resource_lookups.c.incident_key == incident_key
        )
    ).first()
    previous = marker.changed_at if marker is not None else None
    changed = now if previous is None else max(now, previous + 0.001)
    if marker is None:
        conn.execute(
            incident_resource_lookups.insert().values(
                incident_key=incident_key, asked_at=now, changed_at=changed
            )
        )
    else:
        conn.execute(
            update(incident_resource_lookups)
            .where(incident_resource_lookups.c.incident_key == incident_key)
            .values(changed_at=changed)
        )
    redraw_cards(conn, store, incident_key)


def _deployment_row(item: Deployment, now: float) -> dict[str, Any]:
    return {
        "deployment_id": item.deployment_id,
        "resource_group": item.resource_group,
        "name": item.name,
        "name_key": item.name.lower(),
        "state": item.state,
        "timestamp": _ts(item.timestamp),
        "duration": item.duration,
        "correlation_id": item.correlation_id,
        "error": item.error,
        "seen_at": now,
    }


async def store_deployments(store: Store, items: Sequence[Deployment]) -> list[str]:
    """Upsert ``items`` and their targets; the incidents whose cards were redrawn (those
    naming a resource that a deployment new to the store, or newly finished, touched)."""
    unique = list({item.deployment_id: item for item in items}.values())

    def write(conn: Connection, _: None) -> list[str]:
        now = time.time()
        if not unique:
            return []
        ids = [item.deployment_id for item in unique]
        before = {
            row.deployment_id: (row.state, row.timestamp)
            for row in conn.execute(
                select(arm_deployments).where(arm_deployments.c.deployment_id.in_(ids))
            )
        }
        stmt: Any = insert_for(conn.dialect.name, arm_deployments)
        fresh = {
            name: stmt.excluded[name]
            for name in ("state", "timestamp", "duration", "error", "seen_at")
        }
        conn.execute(
            stmt.on_conflict_do_update(index_elements=["deployment_id"], set_=fresh),
            [_deployment_row(item, now) for item in unique],
        )
        conn.execute(delete(deployment_targets).where(deployment_targets.c.deployment_id.in_(ids)))
        targets = [
            {"deployment_id": item.deployment_id, "resource_id": target}
            for item in unique
            for target in item.targets
        ]
        if targets:
            conn.execute(deployment_targets.insert(), targets)
        moved = [
            item
            for item in unique
            if before.get(item.deployment_id) != (item.state, _ts(item.timestamp))
        ]
        touched = {target for item in moved for target in item.targets}
        if not touched:
            return []
        found = conn.execute(
            select(incident_resources.c.incident_key)
            .where(incident_resources.c.resource_id.in_(sorted(touched)))
            .distinct()
        )
        keys = sorted(row.incident_key for row in found)
        for key in keys:
            _bump(conn, store, key, now)
        return keys

    return await store.run_write(write, None)


async def store_incident_resources(
    store: Store, incident_key: str, resource_ids: Sequence[str], first_alert: datetime | None
) -> bool:
    """Replace the incident's resources (lower-cased) and its first alert's time; True when
    they changed (the first alert counts only with resources: without one the card shows
    nothing of it), and then its cards are redrawn in the same transaction."""
    wanted = sorted({resource_id.lower() for resource_id in resource_ids})
    first = _ts(first_alert) if first_alert is not None else None

    def write(conn: Connection, _: None) -> bool:
        now = time.time()
        where = incident_resources.c.incident_key == incident_key
        had = sorted(r.resource_id for r in conn.execute(select(incident_resources).where(where)))
        marker = conn.execute(
            select(incident_resource_lookups).where(
                incident_resource_lookups.c.incident_key == incident_key
            )
        ).first()
        previous = marker.first_alert_at if marker is not None else None
        changed = had != wanted or (bool(wanted) and previous != first)
        conn.execute(delete(incident_resources).where(where))
        if wanted:
            conn.execute(
                incident_resources.insert(),
                [{"incident_key": incident_key, "resource_id": r} for r in wanted],
            )
        values = {"looked_up_at": now, "first_alert_at": first}
        if marker is None:
            conn.execute(
                incident_resource_lookups.insert().values(
                    incident_key=incident_key, asked_at=now, **values
                )
            )
        else:
            conn.execute(
                update(incident_resource_lookups)
                .where(incident_resource_lookups.c.incident_key == incident_key)
                .values(**values)
            )
        if changed:
            _bump(conn, store, incident_key, now)
        return changed

    return await store.run_write(write, None)


async def incident_deployments(
    store: Store, incident_key: str, lookback_seconds: float, read_key: str | None = None
) -> IncidentDeployments:
    """The incident's resources and the latest deployment that touched one of them within
    ``lookback_seconds`` before its first alert (None when there is none); with ``read_key``
    (a Sentinel twin, ``ask_incident``), also whether that twin's read was asked for."""
    keys = [incident_key] if read_key in (None, incident_key) else [incident_key, read_key]
    async with store.reading() as conn:
        markers = {
            row.incident_key: row
            for row in await conn.execute(
                select(incident_resource_lookups).where(
                    incident_resource_lookups.c.incident_key.in_(keys)
                )
            )
        }
        twin_asked = read_key is not None and read_key in markers
        marker = markers.get(incident_key)
        if marker is None:
            return IncidentDeployments(twin_asked=twin_asked)
        rows = await conn.execute(
            select(incident_resources.c.resource_id)
            .where(incident_resources.c.incident_key == incident_key)
            .order_by(incident_resources.c.resource_id)
        )
        resources = [row.resource_id for row in rows]
        note = None
        first = marker.first_alert_at
        if resources and first is not None:
            latest = (
                await conn.execute(
                    select(arm_deployments, deployment_targets.c.resource_id)
                    .join(
                        deployment_targets,
                        deployment_targets.c.deployment_id == arm_deployments.c.deployment_id,
                    )
                    .where(deployment_targets.c.resource_id.in_(resources))
                    .where(arm_deployments.c.timestamp <= first)
                    .where(arm_deployments.c.timestamp >= first - lookback_seconds)
                    .order_by(arm_deployments.c.timestamp.desc(), arm_deployments.c.name)
                    .limit(1)
                )
            ).first()
            if latest is not None:
                note = DeploymentNote(
                    name=latest.name,
                    minutes=int((first - latest.timestamp) // 60),
                    state=latest.state,
                    resource=latest.resource_id,
                )
    return IncidentDeployments(resources, note, True, marker.changed_at, twin_asked)


async def by_name(store: Store, name: str) -> list[Deployment]:
    """The stored deployments named ``name`` (any case), newest first."""
    stmt = (
        select(arm_deployments)
        .where(arm_deployments.c.name_key == name.strip().lower())
        .order_by(arm_deployments.c.timestamp.desc())
    )
    async with store.reading() as conn:
        rows = (await conn.execute(stmt)).all()
        targets = await _targets(conn, [row.deployment_id for row in rows])
    return [_deployment(row, targets.get(row.deployment_id, ())) for row in rows]


async def of_resources(
    store: Store, resource_ids: Sequence[str], *, limit: int = 5
) -> dict[str, list[Deployment]]:
    """The newest ``limit`` deployments that touched each resource, by lower-case id."""
    wanted = sorted({r.lower() for r in resource_ids})
    found: dict[str, list[Deployment]] = {r: [] for r in wanted}
    if not wanted:
        return found
    stmt = (
        select(arm_deployments, deployment_targets.c.resource_id.label("target"))
        .join(
            deployment_targets,
            deployment_targets.c.deployment_id == arm_deployments.c.deployment_id,
        )
        .where(deployment_targets.c.resource_id.in_(wanted))
        .order_by(arm_deployments.c.timestamp.desc())
    )
    async with store.reading() as conn:
        for row in (await conn.execute(stmt)).all():
            if len(found[row.target]) < limit:
                found[row.target].append(_deployment(row, (row.target,)))
    return found


async def _targets(conn: Any, ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
    if not ids:
        return {}
    stmt = select(deployment_targets).where(deployment_targets.c.deployment_id.in_(list(ids)))
    found: dict[str, list[str]] = {}
    for row in (await conn.execute(stmt)).all():
        found.setdefault(row.deployment_id, []).append(row.resource_id)
    return {key: tuple(sorted(value)) for key, value in found.items()}


def _deployment(row: Any, targets: Sequence[str]) -> Deployment:
    return Deployment(
        deployment_id=row.deployment_id,
        resource_group=row.resource_group,
        name=row.name,
        state=row.state,
        timestamp=_when(row.timestamp),
        duration=row.duration,
        correlation_id=row.correlation_id,
        targets=tuple(targets),
        error=row.error,
    )


async def link(
    store: Store, deployment: Deployment, change: str, actor_id: str, actor_name: str
) -> bool:
    """Link ``deployment`` to change ``change`` as ``actor``; False when it was already."""

    def write(conn: Connection, _: None) -> bool:
        stmt: Any = insert_for(conn.dialect.name, deployment_links).values(
            deployment_id=deployment.deployment_id,
            change=change.upper(),
            linked_by=actor_id,
            linked_by_name=store.cipher.encrypt(actor_name),
            linked_at=time.time(),
        )
        return bool(conn.execute(stmt.on_conflict_do_nothing()).rowcount)

    return await store.run_write(write, None)


async def links_of(store: Store, deployments: Sequence[Deployment]) -> list[DeploymentLink]:
    """The change links of ``deployments``, oldest first."""
    names = {d.deployment_id: d.name for d in deployments}
    if not names:
        return []
    stmt = (
        select(deployment_links)
        .where(deployment_links.c.deployment_id.in_(sorted(names)))
        .order_by(deployment_links.c.linked_at, deployment_links.c.id)
    )
    async with store.reading() as conn:
        rows = (await conn.execute(stmt)).all()
    return [
        DeploymentLink(
            deployment_id=row.deployment_id,
            deployment_name=names[row.deployment_id],
            change=row.change,
            linked_by=store.cipher.decrypt(
                row.linked_by_name, "deployment_links.linked_by_name", str(row.id)
            ),
            linked_at=_when(row.linked_at),
        )
        for row in rows
    ]
