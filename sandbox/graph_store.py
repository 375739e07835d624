"""SharePoint data of the Graph sandbox: sites, lists, columns and list items with eTags.

Shapes follow ``contracts/msgraph-v1.0-subset.openapi.yaml`` (``microsoft.graph.site``,
``list``, ``columnDefinition``, ``listItem``, ``fieldValueSet``). A list item's eTag is
``"{guid},{version}"`` with the quotes part of the value, as Graph sends it; the version
grows on every update. The whole state can be written to and read from one JSON file.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.arm_records import GraphError
from sandbox.graph_changes import bury, touch_item, touch_listed
from sandbox.graph_columns import Column, builtin_columns, invalid, not_found
from sandbox.graph_files import DriveItem, new_item_id

__all__ = ["Column", "Item", "SharePointStore", "Site", "SpList", "invalid", "not_found"]

TEMPLATES = ("genericList", "documentLibrary")
"""List templates the sandbox serves."""

READ_ONLY_FIELDS = frozenset({"id", "ID", "Created", "Modified", "ContentType", "_UIVersionString"})
"""Fields Graph fills in itself; writing them is refused."""


def _stamp(now: datetime.datetime) -> str:
    """Return Graph's timestamp format (UTC, whole seconds, ``Z``)."""
    return now.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Item:
    """A listItem: its fields, version (for the eTag) and timestamps."""

    id: int
    guid: str
    fields: dict[str, Any]
    created: str
    modified: str
    version: int = 1
    seq: int = 0
    modified_by: dict[str, Any] = field(default_factory=dict)

    @property
    def etag(self) -> str:
        """The eTag, quotes included: ``"{guid},{version}"``."""
        return f'"{self.guid},{self.version}"'


@dataclass
class SpList:
    """A SharePoint list or document library of a site."""

    id: str
    name: str
    display_name: str
    template: str
    created: str
    modified: str
    columns: list[Column] = field(default_factory=builtin_columns)
    items: dict[int, Item] = field(default_factory=dict)
    next_item_id: int = 1
    drive_id: str = ""
    drive_items: dict[str, DriveItem] = field(default_factory=dict)
    root_id: str = ""
    change_seq: int = 0
    tombstones: list[dict[str, Any]] = field(default_factory=list)

    def column(self, name: str) -> Column | None:
        """Return the column with this internal name (case-sensitive, as SharePoint)."""
        return next((column for column in self.columns if column.name == name), None)


@dataclass
class Site:
    """A site collection's root web: host, server-relative path and its lists."""

    hostname: str
    path: str
    display_name: str
    collection_id: str
    web_id: str
    created: str
    lists: dict[str, SpList] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Graph's composite site id ``{hostname},{site-collection-guid},{web-guid}``."""
        return f"{self.hostname},{self.collection_id},{self.web_id}"

    @property
    def web_url(self) -> str:
        """The site's address in SharePoint."""
        return f"https://{self.hostname}/{self.path}"


class SharePointStore:
    """Every site of the sandbox tenant; optionally persisted as JSON in ``state_dir``."""

    def __init__(self, now: Callable[[], datetime.datetime], state_dir: Path | None = None) -> None:
        """Start empty (or with the state saved in ``state_dir``)."""
        self._now = now
        self.state_dir = state_dir
        self.sites: dict[str, Site] = {}
        self.delta_epoch = 1
        """Delta tokens of another epoch are expired (``sandbox.graph_delta``)."""
        if state_dir is not None and self._state_file.exists():
            self._load()

    @property
    def _state_file(self) -> Path:
        """The JSON file that holds the state."""
        if self.state_dir is None:
            raise RuntimeError("this store is not persisted")
        return self.state_dir / "sharepoint.json"

    def stamp(self) -> str:
        """Return the current time in Graph's format."""
        return _stamp(self._now())

    # Sites.

    def add_site(self, hostname: str, path: str, display_name: str | None = None) -> Site:
        """Create a site (``path`` like ``sites/Evidence``); returns the existing one if any."""
        path = path.strip("/")
        for site in self.sites.values():
            if site.hostname.lower() == hostname.lower() and site.path.lower() == path.lower():
                return site
        site = Site(
            hostname=hostname,
            path=path,
            display_name=display_name or path.rsplit("/", 1)[-1],
            collection_id=str(uuid.uuid4()),
            web_id=str(uuid.uuid4()),
            created=self.stamp(),
        )
        self.sites[site.id.lower()] = site
        self.save()
        return site

    def site(self, site_id: str) -> Site:
        """Return a site by composite id (or ``hostname`` alone: the root site); 404."""
        found = self.sites.get(site_id.lower())
        if found is None:
            raise not_found("site")
        return found

    def site_by_path(self, hostname: str, path: str) -> Site:
        """Return a site by host name and server-relative path; 404."""
        wanted = (hostname.lower(), path.strip("/").lower())
        for site in self.sites.values():
            if (site.hostname.lower(), site.path.lower()) == wanted:
                return site
        raise not_found("site")

    # Lists.

    def add_list(self, site: Site, body: object) -> SpList:
        """Create a list from a POST body (displayName, columns, list.template); 400/409."""
        if not isinstance(body, dict) or not isinstance(body.get("displayName"), str):
            raise invalid("A list needs a 'displayName'.")
        info = body.get("list") or {}
        template = info.get("template", "genericList") if isinstance(info, dict) else ""
        if template not in TEMPLATES:
            raise invalid(f"The list template '{template}' is not supported.")
        name = body["displayName"]
        if any(item.display_name.lower() == name.lower() for item in site.lists.values()):
            message = "A list, survey, discussion board, or document library with the specified title already exists in this Web site."  # noqa: E501
            raise GraphError(409, "nameAlreadyExists", message)
        columns = builtin_columns()
        for raw in body.get("columns") or []:
            column = Column.from_graph(raw)
            if any(existing.name == column.name for existing in columns):
                raise invalid(f"A column named '{column.name}' already exists.")
            columns.append(column)
        stamp = self.stamp()
        made = SpList(
            id=str(uuid.uuid4()),
            name=name.replace(" ", ""),
            display_name=name,
            template=template,
            created=stamp,
            modified=stamp,
            columns=columns,
        )
        if template == "documentLibrary":
            made.drive_id = "b!" + uuid.uuid4().hex
            made.columns.append(Column("FileLeafRef", "text", "Name", read_only=True))
            root = DriveItem(new_item_id(), "root", None, True, stamp, stamp)
            made.drive_items[root.id] = root
            made.root_id = root.id
        site.lists[made.id] = made
        self.save()
        return made

    def list_of(self, site: Site, key: str) -> SpList:
        """Return a list by id or by display name (as Graph accepts both); 404."""
        found = site.lists.get(key.lower()) or next(
            (item for item in site.lists.values() if item.display_name.lower() == key.lower()),
            None,
        )
        if found is None:
            raise not_found("list")
        return found

    def add_column(self, target: SpList, body: object) -> Column:
        """Add a column to a list; 400 if it exists or is malformed."""
        column = Column.from_graph(body)
        if target.column(column.name) is not None:
            raise invalid(f"A column named '{column.name}' already exists.")
        target.columns.append(column)
        self.save()
        return column

    # Items.

    def _checked(self, target: SpList, values: object) -> dict[str, Any]:
        """Return field values after Graph's checks (known, writable, well-typed); 400."""
        if not isinstance(values, dict):
            raise invalid("'fields' must be an object.")
        for name, value in values.items():
            if name.startswith("@odata."):
                continue
            column = target.column(name)
            if column is None:
                raise invalid(f"Field '{name}' is not recognized")
            if column.read_only or name in READ_ONLY_FIELDS:
                raise invalid(f"Field '{name}' is read-only")
            column.check(value)
        return {k: v for k, v in values.items() if not k.startswith("@odata.")}

    def add_item(self, target: SpList, body: object) -> Item:
        """Create an item from ``{"fields": {...}}``; 400 if a required field is missing."""
        fields = self._checked(
            target, (body or {}).get("fields", {}) if isinstance(body, dict) else None
        )
        for column in target.columns:
            if column.required and fields.get(column.name) in (None, ""):
                raise invalid(f"Field '{column.name}' is required.")
        stamp = self.stamp()
        item = Item(target.next_item_id, str(uuid.uuid4()), fields, stamp, stamp)
        target.items[item.id] = item
        target.next_item_id += 1
        touch_item(target, item)
        self.save()
        return item

    def item(self, target: SpList, key: str) -> Item:
        """Return an item by its (numeric) id; 404."""
        found = target.items.get(int(key)) if key.isdigit() else None
        if found is None:
            raise not_found("item")
        return found

    def update_fields(
        self, target: SpList, item: Item, values: object, if_match: str | None
    ) -> Item:
        """Apply field changes if ``if_match`` (when given) is the current eTag; 412 else."""
        if if_match is not None and if_match.strip() not in ("*", item.etag):
            message = (
                f"The request ETag value '{if_match}' does not match the object's "
                f"ETag value '{item.etag}'."
            )
            raise GraphError(412, "resourceModified", message)
        changes = self._checked(target, values)
        for name, value in changes.items():
            if value is None:
                item.fields.pop(name, None)
            else:
                item.fields[name] = value
        item.version += 1
        item.modified = self.stamp()
        target.modified = item.modified
        touch_listed(target, item)
        self.save()
        return item

    def delete_item(self, target: SpList, item: Item, if_match: str | None) -> None:
        """Delete an item (412 on a stale ``if_match``)."""
        if if_match is not None and if_match.strip() not in ("*", item.etag):
            raise GraphError(412, "resourceModified", "The eTag does not match.")
        del target.items[item.id]
        bury(target, str(item.id), "item")
        self.save()

    # Persistence.

    def save(self) -> None:
        """Write the state to ``state_dir`` (no-op when not persisted)."""
        if self.state_dir is None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        temporary = self._state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.to_json(), indent=1))
        temporary.replace(self._state_file)

    def to_json(self) -> dict[str, Any]:
        """Return the whole state as JSON-able data."""
        return {"sites": [_site_json(site) for site in self.sites.values()]}

    def _load(self) -> None:
        """Read the state written by ``save``."""
        data = json.loads(self._state_file.read_text())
        for raw in data.get("sites", []):
            lists = {}
            for raw_list in raw.pop("lists"):
                columns = [Column(**column) for column in raw_list.pop("columns")]
                items = {item["id"]: Item(**item) for item in raw_list.pop("items")}
                files = {entry["id"]: DriveItem(**entry) for entry in raw_list.pop("drive_items")}
                made = SpList(**raw_list, columns=columns, items=items, drive_items=files)
                lists[made.id] = made
            site = Site(**raw, lists=lists)
            self.sites[site.id.lower()] = site

    def library(self, drive_id: str) -> tuple[Site, SpList]:
        """Return the site and document library of a drive id; 404 ``itemNotFound``."""
        for site in self.sites.values():
            for target in site.lists.values():
                if target.drive_id and target.drive_id == drive_id:
                    return site, target
        raise not_found("drive")

    def clear(self) -> None:
        """Forget every site (and the saved state)."""
        self.sites.clear()
        self.save()


def _site_json(site: Site) -> dict[str, Any]:
    """Return one site as persisted."""
    lists = []
    for item in site.lists.values():
        lists.append(
            {
                "id": item.id,
                "name": item.name,
                "display_name": item.display_name,
                "template": item.template,
                "created": item.created,
                "modified": item.modified,
                "next_item_id": item.next_item_id,
                "drive_id": item.drive_id,
                "columns": [vars(column) for column in item.columns],
                "items": [vars(entry) for entry in item.items.values()],
                "root_id": item.root_id,
                "change_seq": item.change_seq,
                "tombstones": item.tombstones,
                "drive_items": [vars(entry) for entry in item.drive_items.values()],
            }
        )
    return {
        "hostname": site.hostname,
        "path": site.path,
        "display_name": site.display_name,
        "collection_id": site.collection_id,
        "web_id": site.web_id,
        "created": site.created,
        "lists": lists,
    }
