"""Drive handlers of the Graph sandbox: ``/v1.0/drives/{drive-id}/...`` and downloads.

Items are addressed by id (``items/{id}``), as the root (``root``), or by path relative
to the root or to a parent (``root:/a/b.pdf:``, ``items/{parent}:/b.pdf:``; supplement
``driveItem_GetByPath``). Served: the drive, an item, ``children``, ``content`` (GET
answers 302 to a pre-authenticated ``/_download/`` URL; PUT uploads up to 250 MB,
streamed to disk, creating missing folders on the path), ``listItem`` and
``listItem/fields`` (PATCH with If-Match), and ``createUploadSession``
(see ``sandbox.graph_upload``).
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.arm_http import request_json
from sandbox.arm_records import GraphError
from sandbox.graph_delta import delta_page
from sandbox.graph_files import DriveFiles, DriveItem
from sandbox.graph_sharepoint import SharePointRoutes
from sandbox.graph_store import Site, SpList, invalid, not_found
from sandbox.graph_tree import (
    children,
    drive_item,
    ensure_folders,
    render_drive_item,
    resolve,
    store_file,
    target_file,
)
from sandbox.graph_upload import UploadSessions, receive_body

if TYPE_CHECKING:
    from sandbox.graph import GraphSandbox

__all__ = ["DriveFiles", "add_drive_routes"]

SIMPLE_UPLOAD_LIMIT = 250 * 1024 * 1024
"""The largest body ``PUT .../content`` accepts (bytes)."""

_BY_PATH = re.compile(r"^/(?:root|items/(?P<base>[^/:]+)):/(?P<path>[^:]*?)/?(?::(?P<rest>/.*)?)?$")
_BY_ID = re.compile(r"^/(?:root|items/(?P<item>[^/:]+))(?P<rest>/.*)?$")
_ACTIONS = {
    "": "item",
    "/children": "children",
    "/content": "content",
    "/listitem": "listitem",
    "/listitem/fields": "fields",
    "/createuploadsession": "session",
    "/delta": "delta",
    "/delta()": "delta",
    "/microsoft.graph.createuploadsession": "session",
}


def _base(library: SpList, item_id: str | None) -> str:
    """Return the id of the item a path starts at (``root`` and no id mean the root)."""
    return library.root_id if item_id is None or item_id.lower() == "root" else item_id


class DriveRoutes:
    """The handlers of ``/v1.0/drives/...``, bound to one sandbox."""

    def __init__(self, sandbox: GraphSandbox) -> None:
        """Bind the handlers to ``sandbox``."""
        self.sandbox = sandbox
        self.store = sandbox.sharepoint
        self.lists = SharePointRoutes(sandbox)
        self.uploads = UploadSessions(sandbox)
        self.downloads: dict[str, tuple[str, str]] = {}

    @property
    def files(self) -> DriveFiles:
        """The file store (set before the app is built)."""
        if self.sandbox.files is None:
            raise RuntimeError("the Graph sandbox has no file store")
        return self.sandbox.files

    def render(self, site: Site, library: SpList, item: DriveItem) -> dict[str, Any]:
        """Return the driveItem JSON."""
        return render_drive_item(site, library, item)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Resolve the drive and the addressed item, then run the handler."""
        drive_id, _, tail = request.match_info["tail"].partition("/")
        site, library = self.store.library(drive_id)
        if not tail:
            if request.method != "GET":
                raise GraphError(405, "invalidRequest", "Only GET is allowed on a drive.")
            return web.json_response(self.sandbox.drive_json(site, library))
        by_path = _BY_PATH.match("/" + tail)
        if by_path is not None:
            base = _base(library, by_path["base"])
            path, rest = by_path["path"], by_path["rest"] or ""
            found = resolve(library, base, path)
        else:
            by_id = _BY_ID.match("/" + tail)
            if by_id is None:
                raise GraphError(400, "BadRequest", f"Resource not found for the segment '{tail}'.")
            base, path, rest = _base(library, by_id["item"]), "", by_id["rest"] or ""
            found = drive_item(library, base)
        action = _ACTIONS.get(rest.lower())
        if action is None:
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest}'.")
        if action == "session":
            return await self.uploads.create(request, site, library, base, path, found)
        if action == "content" and request.method == "PUT":
            return await self.put_content(request, site, library, base, path, found)
        if found is None:
            raise not_found("item")
        handler = getattr(self, f"{request.method.lower()}_{action}", None)
        if handler is None:
            raise GraphError(405, "invalidRequest", f"{request.method} is not allowed here.")
        response: web.StreamResponse = await handler(request, site, library, found)
        return response

    async def get_item(
        self, request: web.Request, site: Site, library: SpList, item: DriveItem
    ) -> web.Response:
        """GET a driveItem."""
        return web.json_response(self.render(site, library, item))

    async def get_delta(
        self, request: web.Request, site: Site, library: SpList, item: DriveItem
    ) -> web.Response:
        """GET the drive items changed since a token (``sandbox.graph_delta``)."""
        current = list(library.drive_items.values())
        return delta_page(
            request,
            self.store,
            library,
            current,
            "file",
            lambda found: self.render(site, library, found),
        )

    async def get_children(
        self, request: web.Request, site: Site, library: SpList, item: DriveItem
    ) -> web.Response:
        """GET the children of a folder."""
        value = [self.render(site, library, c) for c in children(library, item.id)]
        return web.json_response({"value": value})

    async def get_content(
        self, request: web.Request, site: Site, library: SpList, item: DriveItem
    ) -> web.Response:
        """GET content: 302 to a pre-authenticated, short-lived download URL."""
        if item.folder:
            raise invalid("You cannot get content for a folder")
        token = secrets.token_urlsafe(24)
        self.downloads[token] = (library.drive_id, item.id)
        location = f"{self.sandbox.url}/_download/{token}"
        return web.Response(status=302, headers={"Location": location})

    async def put_content(
        self,
        request: web.Request,
        site: Site,
        library: SpList,
        base: str,
        path: str,
        found: DriveItem | None,
    ) -> web.Response:
        """PUT content: 201 with a new file (folders made on the way), 200 when replaced."""
        if found is not None and found.folder:
            raise GraphError(409, "nameAlreadyExists", "A folder with this name already exists.")
        if found is not None and path == "":
            existing: DriveItem | None = found
            parent, name = drive_item(library, found.parent_id or ""), found.name
        else:
            folder, _, name = path.rstrip("/").rpartition("/")
            parent = ensure_folders(self.store, library, base, folder)
            behaviour = request.query.get("@microsoft.graph.conflictBehavior", "replace")
            existing, name = target_file(library, parent, name, behaviour)
        if_match = request.headers.get("If-Match")
        if (
            existing is not None
            and if_match
            and if_match not in ("*", existing.etag, existing.ctag)
        ):
            raise GraphError(412, "resourceModified", "ETag does not match current item's value")
        temporary = self.files.upload_path(secrets.token_hex(16))
        await receive_body(request, temporary, 0, SIMPLE_UPLOAD_LIMIT)
        item, created = store_file(
            self.store, self.files, library, parent, name, existing, temporary
        )
        return web.json_response(self.render(site, library, item), status=201 if created else 200)

    async def get_listitem(
        self, request: web.Request, site: Site, library: SpList, item: DriveItem
    ) -> web.Response:
        """GET the listItem of a file (with its fields)."""
        listed = self.store.item(library, str(item.list_item_id or ""))
        expand = request.query.get("$expand", "fields")
        return web.json_response(self.lists.item_json(site, library, listed, expand))

    async def get_fields(
        self, request: web.Request, site: Site, library: SpList, item: DriveItem
    ) -> web.Response:
        """GET the fieldValueSet of a file's listItem."""
        listed = self.store.item(library, str(item.list_item_id or ""))
        return web.json_response(self.lists.fields_json(listed))

    async def patch_fields(
        self, request: web.Request, site: Site, library: SpList, item: DriveItem
    ) -> web.Response:
        """PATCH a file's columns (If-Match honoured): 200 with the fieldValueSet."""
        listed = self.store.item(library, str(item.list_item_id or ""))
        if_match = request.headers.get("If-Match")
        self.store.update_fields(library, listed, request_json(request), if_match)
        return web.json_response(self.lists.fields_json(listed))

    async def download(self, request: web.Request) -> web.StreamResponse:
        """Serve the bytes behind a download URL (no bearer token needed)."""
        found = self.downloads.get(request.match_info["token"])
        if found is None:
            raise not_found("download")
        path = self.files.path(*found)
        if not path.exists():
            raise not_found("file")
        headers = {"Content-Type": "application/octet-stream"}
        return web.FileResponse(path, headers=headers)


def add_drive_routes(app: web.Application, sandbox: GraphSandbox) -> None:
    """Register ``/v1.0/drives/{tail}``, the upload URL and the download URL routes."""
    routes = DriveRoutes(sandbox)
    app.router.add_route("*", "/v1.0/drives/{tail:.*}", routes.dispatch, name="drives")
    app.router.add_get("/_download/{token}", routes.download, name="download")
    routes.uploads.add_routes(app)
