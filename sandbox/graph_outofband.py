"""Out-of-band edits in the Graph sandbox: what a person does in SharePoint's own pages.

Control routes (under ``/_sandbox/``, never logged, faulted or checked), each change
attributed to a person (``lastModifiedBy.user``; Megan Bowen unless the query names
another with ``by`` and ``email``), so a delta query reports it as SharePoint would:

``PATCH  /_sandbox/sharepoint/lists/{list}/items/{item}``           200 fields; body
                                                                     ``{"fields": {...}}``
                                                                     (a column edited)
``DELETE /_sandbox/sharepoint/lists/{list}/items/{item}``           204 (an item deleted)
``PUT    /_sandbox/sharepoint/drives/{drive}/items/{item}/content`` 200 driveItem; body: the
                                                                     new bytes (a file replaced)
``DELETE /_sandbox/sharepoint/drives/{drive}/items/{item}``         204 (a file deleted)
``POST   /_sandbox/delta/expire``                                    200 ``{"epoch"}``: every
                                                                     delta token so far is
                                                                     expired (410 Gone)

``{list}`` is a list id or display name of any site.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.arm_records import GraphError
from sandbox.graph_changes import acting_as, bury, user_actor
from sandbox.graph_delta import expire_tokens
from sandbox.graph_store import Site, SpList, not_found
from sandbox.graph_tree import drive_item, render_drive_item, store_file

if TYPE_CHECKING:
    from sandbox.graph import GraphSandbox


def _person(request: web.Request) -> dict[str, Any]:
    """The person the query names (``by``, ``email``), else Megan Bowen."""
    named: dict[str, Any] = {}
    if request.query.get("by"):
        named["displayName"] = request.query["by"]
    if request.query.get("email"):
        named["email"] = request.query["email"]
    return user_actor(named)


class OutOfBandRoutes:
    """The handlers of out-of-band edits, bound to one sandbox."""

    def __init__(self, sandbox: GraphSandbox) -> None:
        """Bind the handlers to ``sandbox``."""
        self.sandbox = sandbox
        self.store = sandbox.sharepoint

    def _list(self, key: str) -> tuple[Site, SpList]:
        """A list of any site by id or display name; 404."""
        for site in self.store.sites.values():
            try:
                return site, self.store.list_of(site, key)
            except GraphError:
                continue
        raise not_found("list")

    async def edit_item(self, request: web.Request) -> web.Response:
        """Change an item's columns as a person would in SharePoint."""
        _, target = self._list(request.match_info["list"])
        item = self.store.item(target, request.match_info["item"])
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            raise GraphError(400, "BadRequest", "Request body is not valid JSON") from None
        fields = body.get("fields") if isinstance(body, dict) else None
        with acting_as(_person(request)):
            self.store.update_fields(target, item, fields, None)
        return web.json_response({"@odata.etag": item.etag, **item.fields})

    async def delete_item(self, request: web.Request) -> web.Response:
        """Delete a list item as a person would."""
        _, target = self._list(request.match_info["list"])
        item = self.store.item(target, request.match_info["item"])
        with acting_as(_person(request)):
            self.store.delete_item(target, item, None)
        return web.Response(status=204)

    async def replace_file(self, request: web.Request) -> web.Response:
        """Replace a file's bytes as a person uploading a new version would."""
        site, library = self.store.library(request.match_info["drive"])
        existing = drive_item(library, request.match_info["item"])
        if existing.folder or self.sandbox.files is None:
            raise GraphError(400, "BadRequest", "Only a file's content can be replaced.")
        parent = drive_item(library, existing.parent_id or "")
        temporary = self.sandbox.files.upload_path(secrets.token_hex(16))
        temporary.write_bytes(await request.read())
        with acting_as(_person(request)):
            store_file(
                self.store, self.sandbox.files, library, parent, existing.name, existing, temporary
            )
        return web.json_response(render_drive_item(site, library, existing))

    async def delete_file(self, request: web.Request) -> web.Response:
        """Delete a file (and its list item) as a person would."""
        _, library = self.store.library(request.match_info["drive"])
        found = drive_item(library, request.match_info["item"])
        if found.folder:
            raise GraphError(400, "BadRequest", "The sandbox deletes files only.")
        del library.drive_items[found.id]
        listed = library.items.pop(found.list_item_id or -1, None)
        if listed is not None:
            bury(library, str(listed.id), "item")
        bury(library, found.id, "file", found.name)
        if self.sandbox.files is not None:
            self.sandbox.files.path(library.drive_id, found.id).unlink(missing_ok=True)
        self.store.save()
        return web.Response(status=204)

    async def expire(self, request: web.Request) -> web.Response:
        """Expire every delta token handed out so far."""
        return web.json_response({"epoch": expire_tokens(self.store)})


def add_out_of_band_routes(control: web.Application, sandbox: GraphSandbox) -> None:
    """Register the out-of-band edit routes on the control sub-application."""
    routes = OutOfBandRoutes(sandbox)
    add = control.router.add_route
    add("PATCH", "/sharepoint/lists/{list}/items/{item}", routes.edit_item)
    add("DELETE", "/sharepoint/lists/{list}/items/{item}", routes.delete_item)
    add("PUT", "/sharepoint/drives/{drive}/items/{item}/content", routes.replace_file)
    add("DELETE", "/sharepoint/drives/{drive}/items/{item}", routes.delete_file)
    add("POST", "/delta/expire", routes.expire)
