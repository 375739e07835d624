"""Folder-tree operations on a document library of the Graph sandbox (no HTTP here).

Names are compared case-insensitively, as SharePoint does. Creating a file also creates
its list item (``FileLeafRef`` = the name); replacing it bumps both versions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.arm_records import GraphError
from sandbox.graph_changes import touch_file
from sandbox.graph_files import DriveItem, new_item_id, render_item
from sandbox.graph_store import Item, Site, SpList, invalid, not_found

if TYPE_CHECKING:
    from sandbox.graph_files import DriveFiles
    from sandbox.graph_store import SharePointStore

_BAD_CHARS = set('"*:<>?/\\|')
CONFLICT_BEHAVIOURS = ("fail", "replace", "rename")
"""Values of ``@microsoft.graph.conflictBehavior``."""


def check_name(name: str) -> str:
    """Return a valid item name, or raise Graph's 400 ``invalidRequest``."""
    if not name or name in (".", "..") or set(name) & _BAD_CHARS or name.endswith("."):
        raise invalid(f"The provided name '{name}' is not valid.")
    return name


def children(library: SpList, parent_id: str) -> list[DriveItem]:
    """Return the children of a folder, in creation order."""
    return [item for item in library.drive_items.values() if item.parent_id == parent_id]


def child(library: SpList, parent_id: str, name: str) -> DriveItem | None:
    """Return the child of a folder with this name (case-insensitive)."""
    wanted = name.lower()
    return next((c for c in children(library, parent_id) if c.name.lower() == wanted), None)


def drive_item(library: SpList, item_id: str) -> DriveItem:
    """Return a drive item by id; 404 ``itemNotFound``."""
    found = library.drive_items.get(item_id)
    if found is None:
        raise not_found("item")
    return found


def parent_path(library: SpList, item: DriveItem) -> str:
    """Return the ``/drive/root:`` path of an item's parent folder."""
    names: list[str] = []
    current = library.drive_items.get(item.parent_id or "")
    while current is not None and current.parent_id is not None:
        names.append(current.name)
        current = library.drive_items.get(current.parent_id)
    return "/drive/root:" + "".join(f"/{name}" for name in reversed(names))


def resolve(library: SpList, start_id: str, path: str) -> DriveItem | None:
    """Return the item at ``path`` under ``start_id``, or None if any segment is missing."""
    current = drive_item(library, start_id)
    for segment in [s for s in path.split("/") if s]:
        found = child(library, current.id, segment)
        if found is None:
            return None
        current = found
    return current


def ensure_folders(store: SharePointStore, library: SpList, start_id: str, path: str) -> DriveItem:
    """Return the folder at ``path`` under ``start_id``, creating missing folders."""
    current = drive_item(library, start_id)
    for segment in [s for s in path.split("/") if s]:
        found = child(library, current.id, segment)
        if found is None:
            stamp = store.stamp()
            found = DriveItem(new_item_id(), check_name(segment), current.id, True, stamp, stamp)
            library.drive_items[found.id] = found
            touch_file(library, found)
        elif not found.folder:
            raise GraphError(409, "nameAlreadyExists", f"'{segment}' is a file, not a folder.")
        current = found
    return current


def _renamed(library: SpList, parent_id: str, name: str) -> str:
    """Return ``name`` or ``name 1.ext``, ``name 2.ext``... free in the folder."""
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    number = 1
    candidate = name
    while child(library, parent_id, candidate) is not None:
        candidate = f"{stem} {number}{dot}{suffix}"
        number += 1
    return candidate


def target_file(
    library: SpList, parent: DriveItem, name: str, behaviour: str
) -> tuple[DriveItem | None, str]:
    """Return (existing file to replace or None, name to create) for a conflict behaviour."""
    if behaviour not in CONFLICT_BEHAVIOURS:
        raise invalid(f"Invalid conflict behavior '{behaviour}'.")
    if not parent.folder:
        raise invalid("The parent item is not a folder.")
    existing = child(library, parent.id, check_name(name))
    if existing is None:
        return None, name
    if existing.folder or behaviour == "fail":
        raise GraphError(409, "nameAlreadyExists", "The specified item name already exists.")
    if behaviour == "rename":
        return None, _renamed(library, parent.id, name)
    return existing, name


def store_file(
    store: SharePointStore,
    files: DriveFiles,
    library: SpList,
    parent: DriveItem,
    name: str,
    existing: DriveItem | None,
    source: Path,
) -> tuple[DriveItem, bool]:
    """Put finished bytes in place as a new or replaced file; returns (item, created)."""
    stamp = store.stamp()
    if existing is not None:
        existing.size = files.commit(source, library.drive_id, existing.id)
        existing.version += 1
        existing.modified = stamp
        linked = library.items.get(existing.list_item_id or -1)
        if linked is not None:
            linked.version += 1
            linked.modified = stamp
        touch_file(library, existing)
        store.save()
        return existing, False
    item = DriveItem(new_item_id(), name, parent.id, False, stamp, stamp)
    item.size = files.commit(source, library.drive_id, item.id)
    listed = Item(library.next_item_id, item.guid.lower(), {"FileLeafRef": name}, stamp, stamp)
    library.items[listed.id] = listed
    library.next_item_id += 1
    item.list_item_id = listed.id
    library.drive_items[item.id] = item
    touch_file(library, item)
    store.save()
    return item, True


def render_drive_item(site: Site, library: SpList, item: DriveItem) -> dict[str, Any]:
    """Return the driveItem JSON of an item of ``library``."""
    count = len(children(library, item.id)) if item.folder else 0
    web_root = f"{site.web_url}/{library.name}"
    return render_item(item, library.drive_id, web_root, count, parent_path(library, item))
