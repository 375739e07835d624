"""Change tracking of the Graph sandbox's SharePoint data: who changed what, in which order.

Every write to a list item or a drive item takes the next change number of its list
(``SpList.change_seq``) and records who made it (``lastModifiedBy``): the application whose
bearer token made the request, or the person of an out-of-band edit made through the
control API. A removed item leaves a tombstone with its change number, so a delta query
(``sandbox.graph_delta``) can report it with the ``deleted`` facet.

Who is writing travels in a context variable set per request (``acting_as``): the store
functions run inside the request's task, so concurrent requests never see each other's actor.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.graph_files import DriveItem
    from sandbox.graph_store import Item, SpList

DEFAULT_ACTOR: dict[str, Any] = {"application": {"displayName": "SharePoint"}}
"""Who a change is attributed to when no request set one (seeding from code)."""

MEGAN = {
    "id": "48d31887-5fad-4d73-a9f5-3c356e68a038",
    "displayName": "Megan Bowen",
    "email": "MeganB@contoso.onmicrosoft.com",
}
"""The person an out-of-band edit is made as, unless the control request names another."""

_ACTOR: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "graph_sandbox_actor", default=None
)


def app_actor(app_id: str, display_name: str) -> dict[str, Any]:
    """The identitySet of an application: ``{"application": {"id", "displayName"}}``."""
    return {"application": {"id": app_id, "displayName": display_name}}


def user_actor(user: dict[str, Any] | None = None) -> dict[str, Any]:
    """The identitySet of a person (Megan Bowen unless ``user`` says otherwise)."""
    return {"user": {**MEGAN, **(user or {})}}


def set_actor(actor: dict[str, Any]) -> None:
    """Attribute the changes of the current request (task) to ``actor``."""
    _ACTOR.set(actor)


@contextlib.contextmanager
def acting_as(actor: dict[str, Any]) -> Iterator[None]:
    """Attribute the changes made inside the block to ``actor``."""
    token = _ACTOR.set(actor)
    try:
        yield
    finally:
        _ACTOR.reset(token)


def current_actor() -> dict[str, Any]:
    """Who the change being made is attributed to."""
    return _ACTOR.get() or DEFAULT_ACTOR


def touch_item(target: SpList, item: Item) -> None:
    """Record a change of a list item: next change number, current actor."""
    target.change_seq += 1
    item.seq = target.change_seq
    item.modified_by = current_actor()


def touch_file(target: SpList, item: DriveItem) -> None:
    """Record a change of a drive item (and of its list item, which changes with it)."""
    target.change_seq += 1
    item.seq = target.change_seq
    item.modified_by = current_actor()
    listed = target.items.get(item.list_item_id or -1)
    if listed is not None:
        listed.seq = target.change_seq
        listed.modified_by = item.modified_by


def linked_file(target: SpList, item: Item) -> DriveItem | None:
    """The drive item whose list item is ``item`` (libraries only), or None."""
    return next((d for d in target.drive_items.values() if d.list_item_id == item.id), None)


def touch_listed(target: SpList, item: Item) -> None:
    """Record a change of a list item; in a library, its file changes with it."""
    linked = linked_file(target, item)
    if linked is None:
        touch_item(target, item)
        return
    linked.version += 1
    linked.modified = item.modified
    touch_file(target, linked)


def bury(target: SpList, item_id: str, kind: str, name: str = "") -> None:
    """Leave a tombstone for a removed item (``kind``: ``item`` or ``file``)."""
    target.change_seq += 1
    target.tombstones.append({"id": item_id, "kind": kind, "seq": target.change_seq, "name": name})
