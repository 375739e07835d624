"""The roster: the people and groups Entra ID provisions through SCIM, as stored documents.

Each person or group is one row: the SCIM document as Warden last accepted it (sealed: names,
addresses), plus the columns queries need in the clear (user name or display name, external
id, active, manager, version). A group's members are a link table too, so a person's groups
are one query. User names are unique case-blind (RFC 7643 §4.1.1); group names are not.

Writes compare the version the caller read, so two provisioning requests racing on one record
never lose a change. A person going from active to inactive (or deleted while active) is a
leaver: in the same transaction, their pending evidence requests move to their manager or to
one of their groups (``core.store.roster_leavers``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    delete,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from core.errors import RosterConflict, RosterNotFound, RosterVersionMismatch
from core.store.schema import metadata
from core.store.store import Store

USER, GROUP = "User", "Group"

roster_resources = Table(
    "roster_resources",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("name", String(512), nullable=False),
    Column("name_key", String(512), nullable=False),
    Column("unique_key", String(512)),
    Column("external_id", String(512)),
    Column("active", Boolean, nullable=False),
    Column("manager_id", String(64)),
    Column("document", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ux_roster_resources_unique_key", "kind", "unique_key", unique=True),
    Index("ix_roster_resources_name", "kind", "name_key"),
    Index("ix_roster_resources_external_id", "kind", "external_id"),
)
"""People (``kind`` User) and groups: ``unique_key`` is a person's case-folded user name and
NULL for groups (NULLs never collide); ``document`` is the SCIM JSON, sealed."""

roster_members = Table(
    "roster_members",
    metadata,
    Column("group_id", String(64), primary_key=True),
    Column("member_id", String(64), primary_key=True),
    Index("ix_roster_members_member", "member_id"),
)
"""Which roster ids are members of which group (kept from the group's document)."""


@dataclass(frozen=True)
class RosterWrite:
    """What a create or replace stores: the document and the facts queries need."""

    kind: str
    name: str
    document: dict[str, Any]
    external_id: str | None = None
    active: bool = True
    manager_id: str | None = None
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class RosterRecord:
    """A stored person or group (``document`` without ``id`` or ``meta``)."""

    id: str
    kind: str
    name: str
    document: dict[str, Any]
    version: int
    created_at: float
    updated_at: float
    external_id: str | None = None
    active: bool = True
    manager_id: str | None = None
    members: tuple[str, ...] = field(default=())


Reassign = Callable[[Connection, Store, RosterRecord], object]
"""Moves a leaver's pending work, inside the roster write's transaction."""


def _values(store: Store, write: RosterWrite) -> dict[str, Any]:
    key = write.name.casefold()
    return {
        "kind": write.kind,
        "name": write.name,
        "name_key": key,
        "unique_key": key if write.kind == USER else None,
        "external_id": write.external_id,
        "active": write.active,
        "manager_id": write.manager_id,
        "document": store.cipher.encrypt(json.dumps(write.document, separators=(",", ":"))),
    }


def _record(store: Store, row: Any, members: Sequence[str] = ()) -> RosterRecord:
    document = json.loads(store.cipher.decrypt(row.document, "roster_resources.document", row.id))
    return RosterRecord(
        id=row.id,
        kind=row.kind,
        name=row.name,
        document=document,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        external_id=row.external_id,
        active=bool(row.active),
        manager_id=row.manager_id,
        members=tuple(members),
    )


def read(conn: Connection, store: Store, kind: str, resource_id: str) -> RosterRecord | None:
    """The record on an open transaction, with its members, or None."""
    row = conn.execute(
        select(roster_resources).where(
            roster_resources.c.id == resource_id, roster_resources.c.kind == kind
        )
    ).first()
    if row is None:
        return None
    members = conn.execute(
        select(roster_members.c.member_id)
        .where(roster_members.c.group_id == resource_id)
        .order_by(roster_members.c.member_id)
    ).scalars()
    return _record(store, row, list(members))


def _conflict(write: RosterWrite) -> RosterConflict:
    return RosterConflict(f"another person already has the user name {write.name!r}")


def _set_members(conn: Connection, resource_id: str, members: Sequence[str]) -> None:
    conn.execute(delete(roster_members).where(roster_members.c.group_id == resource_id))
    if members:
        rows = [{"group_id": resource_id, "member_id": m} for m in dict.fromkeys(members)]
        conn.execute(roster_members.insert(), rows)


async def create(store: Store, write: RosterWrite) -> RosterRecord:
    """Store a new person or group; ``RosterConflict`` when the user name is taken."""

    def work(conn: Connection, _: None) -> RosterRecord:
        now, resource_id = time.time(), uuid.uuid4().hex
        row = {"id": resource_id, "version": 1, "created_at": now, "updated_at": now}
        try:  # the transaction is abandoned on a conflict: nothing else was written yet
            conn.execute(roster_resources.insert().values(**row, **_values(store, write)))
        except IntegrityError:
            raise _conflict(write) from None
        _set_members(conn, resource_id, write.members)
        found = read(conn, store, write.kind, resource_id)
        assert found is not None
        return found

    return await store.run_write(work, None)


async def replace_record(
    store: Store,
    kind: str,
    resource_id: str,
    write: RosterWrite,
    *,
    if_version: int | None = None,
    on_leaver: Reassign | None = None,
) -> RosterRecord:
    """Replace a record (one version later); ``on_leaver`` runs when a person is deactivated.

    ``RosterNotFound``, ``RosterConflict`` (user name taken) or ``RosterVersionMismatch``
    (``if_version`` is not the stored version) write nothing.
    """

    def work(conn: Connection, _: None) -> RosterRecord:
        before = _existing(conn, store, kind, resource_id)
        if if_version is not None and before.version != if_version:
            raise RosterVersionMismatch(f"{kind} {resource_id} is at version {before.version}")
        stamp = {"version": before.version + 1, "updated_at": time.time()}
        try:  # the transaction is abandoned on a conflict: nothing was written yet
            conn.execute(
                update(roster_resources)
                .where(roster_resources.c.id == resource_id)
                .values(**stamp, **_values(store, write))
            )
        except IntegrityError:
            raise _conflict(write) from None
        _set_members(conn, resource_id, write.members)
        after = _existing(conn, store, kind, resource_id)
        if on_leaver is not None and kind == USER and before.active and not after.active:
            on_leaver(conn, store, after)
        return after

    return await store.run_write(work, None)


async def delete_record(
    store: Store, kind: str, resource_id: str, *, on_leaver: Reassign | None = None
) -> bool:
    """Delete a record and its memberships; a deleted active person is a leaver first."""

    def work(conn: Connection, _: None) -> bool:
        before = read(conn, store, kind, resource_id)
        if before is None:
            return False
        if on_leaver is not None and kind == USER and before.active:
            on_leaver(conn, store, replace(before, active=False))
        conn.execute(delete(roster_members).where(roster_members.c.group_id == resource_id))
        conn.execute(delete(roster_members).where(roster_members.c.member_id == resource_id))
        conn.execute(delete(roster_resources).where(roster_resources.c.id == resource_id))
        return True

    return await store.run_write(work, None)


def _existing(conn: Connection, store: Store, kind: str, resource_id: str) -> RosterRecord:
    found = read(conn, store, kind, resource_id)
    if found is None:
        raise RosterNotFound(f"no {kind} {resource_id}")
    return found


async def get(store: Store, kind: str, resource_id: str) -> RosterRecord | None:
    """The person or group with this id, or None."""
    async with store.reading() as conn:
        return await conn.run_sync(lambda sync: read(sync, store, kind, resource_id))


async def find(
    store: Store, kind: str, *, name: str | None = None, external_id: str | None = None
) -> list[RosterRecord]:
    """Records of ``kind``, narrowed to a name (case-blind) or external id when given.

    Ordered by creation, then id, so pages are stable.
    """

    def work(conn: Connection) -> list[RosterRecord]:
        stmt = select(roster_resources).where(roster_resources.c.kind == kind)
        if name is not None:
            stmt = stmt.where(roster_resources.c.name_key == name.casefold())
        if external_id is not None:
            stmt = stmt.where(roster_resources.c.external_id == external_id)
        rows = conn.execute(
            stmt.order_by(roster_resources.c.created_at, roster_resources.c.id)
        ).all()
        links = conn.execute(
            select(roster_members.c.group_id, roster_members.c.member_id).where(
                roster_members.c.group_id.in_([row.id for row in rows])
            )
        ).all()
        members: dict[str, list[str]] = {}
        for link in links:
            members.setdefault(link.group_id, []).append(link.member_id)
        return [_record(store, row, sorted(members.get(row.id, []))) for row in rows]

    async with store.reading() as conn:
        return await conn.run_sync(work)


def groups_of(conn: Connection, store: Store, member_id: str) -> list[RosterRecord]:
    """The groups ``member_id`` belongs to, by display name (on an open transaction)."""
    ids = conn.execute(
        select(roster_members.c.group_id).where(roster_members.c.member_id == member_id)
    ).scalars()
    found = [read(conn, store, GROUP, group_id) for group_id in ids]
    return sorted((g for g in found if g is not None), key=lambda g: g.name.casefold())
