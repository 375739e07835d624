"""SharePoint handlers of the Graph sandbox: sites, lists, columns, list items and fields.

One catch-all route serves ``/v1.0/sites/...`` because a site may be addressed by path
(``/sites/{hostname}:/sites/{name}[:/rest]``, supplement ``site_GetByHostAndPath``) or by
its composite id (``{hostname},{guid},{guid}``), which the router cannot express.
Collections page with ``@odata.nextLink`` (an opaque ``$skiptoken``); ``$top`` sets the
page size. ``$expand=fields`` (optionally ``fields($select=A,B)``) embeds the field values;
``$filter`` understands ``fields/Name eq 'value'`` joined by ``and``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.arm_http import request_json
from sandbox.arm_records import GraphError
from sandbox.graph_delta import delta_page
from sandbox.graph_store import Item, Site, SpList, invalid, not_found

if TYPE_CHECKING:
    from sandbox.graph import GraphSandbox

DEFAULT_PAGE = 200
"""Items per page when ``$top`` is absent (Graph's default for list items)."""

_BY_PATH = re.compile(r"^(?P<host>[^/:,]+):/(?P<path>[^:]+?)/?(?::(?P<rest>/.*)?)?$")
_BY_ID = re.compile(r"^(?P<id>[^/]+)(?P<rest>/.*)?$")
_ROUTES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), name)
    for pattern, name in (
        (r"^/?$", "site"),
        (r"^/lists/?$", "lists"),
        (r"^/lists/(?P<list>[^/]+)$", "list"),
        (r"^/lists/(?P<list>[^/]+)/columns/?$", "columns"),
        (r"^/lists/(?P<list>[^/]+)/items/?$", "items"),
        (r"^/lists/(?P<list>[^/]+)/items/delta(?:\(\))?$", "items_delta"),
        (r"^/lists/(?P<list>[^/]+)/items/(?P<item>[^/]+)$", "item"),
        (r"^/lists/(?P<list>[^/]+)/items/(?P<item>[^/]+)/fields$", "fields"),
        (r"^/drive$", "drive"),
        (r"^/drives$", "drives"),
    )
)
_FILTER = re.compile(
    r"^\s*fields/(\w+)\s+eq\s+(?:'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?)|(true|false))\s*$"
)
_SELECT = re.compile(r"^fields(?:\(\$select=(?P<select>[^)]*)\))?$", re.IGNORECASE)


def _query(request: web.Request) -> dict[str, str]:
    """Return the query with lowered ``$`` option names."""
    return {key.lower(): value for key, value in request.query.items()}


def _skip_token(offset: int) -> str:
    """Return an opaque ``$skiptoken`` for a position."""
    return base64.urlsafe_b64encode(f"Paged=TRUE&p_ID={offset}".encode()).decode()


def _offset(token: str | None) -> int:
    """Return the position of a ``$skiptoken``; Graph's 400 for a foreign one."""
    if token is None:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode().rsplit("=", 1)[1])
    except (ValueError, IndexError):
        raise invalid("The $skiptoken is not valid.") from None


def _top(query: dict[str, str]) -> int:
    """Return the page size (``$top`` 1..999, else the default); 400 if malformed."""
    raw = query.get("$top")
    if raw is None:
        return DEFAULT_PAGE
    if not raw.isdigit() or not 0 < int(raw) <= 999:
        raise invalid(f"Invalid value '{raw}' for $top.")
    return int(raw)


def _matches(item: Item, raw_filter: str | None) -> bool:
    """Tell whether an item passes a ``$filter`` (400 for what the sandbox does not parse)."""
    if not raw_filter:
        return True
    for clause in re.split(r"\s+and\s+", raw_filter, flags=re.IGNORECASE):
        found = _FILTER.match(clause)
        if found is None:
            raise invalid(f"Invalid filter clause: '{clause}'.")
        name, text, number, boolean = found.groups()
        expected: object = text.replace("''", "'") if text is not None else None
        if number is not None:
            expected = float(number)
        elif boolean is not None:
            expected = boolean == "true"
        actual = item.fields.get(name)
        if number is not None and isinstance(actual, (int, float)):
            actual = float(actual)
        if actual != expected:
            return False
    return True


def _page_url(request: web.Request, offset: int) -> str:
    """Return this request's URL with ``$skiptoken`` set to ``offset``."""
    params = [(k, v) for k, v in request.query.items() if k.lower() != "$skiptoken"]
    params.append(("$skiptoken", _skip_token(offset)))
    return str(request.url.with_query(params))


class SharePointRoutes:
    """The handlers of ``/v1.0/sites/...``, bound to one sandbox."""

    def __init__(self, sandbox: GraphSandbox) -> None:
        """Bind the handlers to ``sandbox``."""
        self.sandbox = sandbox
        self.store = sandbox.sharepoint

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Resolve the site reference, then run the handler of the rest of the path."""
        tail = request.match_info["tail"]
        by_path = _BY_PATH.match(tail)
        if by_path is not None:
            site = self.store.site_by_path(by_path["host"], by_path["path"])
            rest = by_path["rest"] or ""
        else:
            by_id = _BY_ID.match(tail)
            if by_id is None:
                raise invalid("Invalid site reference.")
            site, rest = self.store.site(by_id["id"]), by_id["rest"] or ""
        for pattern, name in _ROUTES:
            found = pattern.match(rest)
            if found is None:
                continue
            handler: Callable[..., Awaitable[web.StreamResponse]] | None = getattr(
                self, f"{request.method.lower()}_{name}", None
            )
            if handler is None:
                raise GraphError(405, "invalidRequest", f"{request.method} is not allowed here.")
            return await handler(request, site, **found.groupdict())
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest}'.")

    # Rendering.

    def site_json(self, request: web.Request, site: Site) -> dict[str, Any]:
        """Return the site resource."""
        return {
            "@odata.context": f"{self.sandbox.graph_url}/$metadata#sites/$entity",
            "id": site.id,
            "name": site.path.rsplit("/", 1)[-1],
            "displayName": site.display_name,
            "webUrl": site.web_url,
            "createdDateTime": site.created,
            "lastModifiedDateTime": site.created,
            "siteCollection": {"hostname": site.hostname},
            "root": {},
        }

    def list_json(self, site: Site, target: SpList, *, columns: bool = False) -> dict[str, Any]:
        """Return a list resource (with its columns when asked)."""
        body: dict[str, Any] = {
            "@odata.etag": f'"{target.id},{len(target.columns)}"',
            "id": target.id,
            "name": target.name,
            "displayName": target.display_name,
            "description": "",
            "webUrl": f"{site.web_url}/Lists/{target.name}",
            "createdDateTime": target.created,
            "lastModifiedDateTime": target.modified,
            "eTag": f'"{target.id},{len(target.columns)}"',
            "list": {"template": target.template, "hidden": False, "contentTypesEnabled": False},
            "parentReference": {"siteId": site.id},
        }
        if columns:
            body["columns"] = [column.render() for column in target.columns]
        return body

    def fields_json(self, item: Item, select: list[str] | None = None) -> dict[str, Any]:
        """Return an item's fieldValueSet (with Graph's own fields)."""
        values: dict[str, Any] = {
            "@odata.etag": item.etag,
            "id": str(item.id),
            "ContentType": "Item",
            "Created": item.created,
            "Modified": item.modified,
            "_UIVersionString": f"{item.version}.0",
            **item.fields,
        }
        if select is not None:
            values = {k: v for k, v in values.items() if k in select or k == "@odata.etag"}
        return values

    def item_json(
        self, site: Site, target: SpList, item: Item, expand: str | None
    ) -> dict[str, Any]:
        """Return a listItem resource; ``expand`` is the raw ``$expand`` option."""
        body: dict[str, Any] = {
            "@odata.etag": item.etag,
            "id": str(item.id),
            "eTag": item.etag,
            "createdDateTime": item.created,
            "lastModifiedDateTime": item.modified,
            "webUrl": f"{site.web_url}/Lists/{target.name}/{item.id}_.000",
            "contentType": {"id": "0x0100", "name": "Item"},
            "createdBy": {"application": {"displayName": "Warden"}},
            "lastModifiedBy": item.modified_by or {"application": {"displayName": "Warden"}},
            "parentReference": {"id": target.id, "siteId": site.id},
        }
        if expand:
            found = _SELECT.match(expand.strip())
            if found is None:
                raise invalid(f"Parsing OData Select and Expand failed: '{expand}'.")
            select = found["select"]
            names = [name.strip() for name in select.split(",")] if select else None
            body["fields"] = self.fields_json(item, names)
        return body

    # Handlers.

    async def get_site(self, request: web.Request, site: Site) -> web.Response:
        """GET a site by id or path."""
        return web.json_response(self.site_json(request, site))

    async def get_lists(self, request: web.Request, site: Site) -> web.Response:
        """GET the lists of a site."""
        value = [self.list_json(site, item) for item in site.lists.values()]
        return web.json_response({"value": value})

    async def post_lists(self, request: web.Request, site: Site) -> web.Response:
        """POST a new list: 201 with the list and its columns."""
        made = self.store.add_list(site, request_json(request))
        return web.json_response(self.list_json(site, made, columns=True), status=201)

    async def get_list(self, request: web.Request, site: Site, list: str) -> web.Response:
        """GET one list (``$expand=columns`` embeds the columns)."""
        target = self.store.list_of(site, list)
        expand = _query(request).get("$expand", "")
        return web.json_response(self.list_json(site, target, columns="columns" in expand))

    async def get_columns(self, request: web.Request, site: Site, list: str) -> web.Response:
        """GET the columns of a list."""
        target = self.store.list_of(site, list)
        return web.json_response({"value": [column.render() for column in target.columns]})

    async def post_columns(self, request: web.Request, site: Site, list: str) -> web.Response:
        """POST a column: 201 with the columnDefinition."""
        column = self.store.add_column(self.store.list_of(site, list), request_json(request))
        return web.json_response(column.render(), status=201)

    async def get_items(self, request: web.Request, site: Site, list: str) -> web.Response:
        """GET a page of items (``$top``, ``$skiptoken``, ``$filter``, ``$expand``)."""
        target = self.store.list_of(site, list)
        query = _query(request)
        top, start = _top(query), _offset(query.get("$skiptoken"))
        chosen = [item for item in target.items.values() if _matches(item, query.get("$filter"))]
        page = chosen[start : start + top]
        expand = query.get("$expand")
        body: dict[str, Any] = {
            "value": [self.item_json(site, target, item, expand) for item in page]
        }
        if start + top < len(chosen):
            body["@odata.nextLink"] = _page_url(request, start + top)
        return web.json_response(body)

    async def get_items_delta(self, request: web.Request, site: Site, list: str) -> web.Response:
        """GET the items changed since a token (``sandbox.graph_delta``)."""
        target = self.store.list_of(site, list)
        expand = _query(request).get("$expand")
        items = list_items(target)
        return delta_page(
            request,
            self.store,
            target,
            items,
            "item",
            lambda item: self.item_json(site, target, item, expand),
        )

    async def post_items(self, request: web.Request, site: Site, list: str) -> web.Response:
        """POST an item ``{"fields": {...}}``: 201 with the listItem and its fields."""
        target = self.store.list_of(site, list)
        item = self.store.add_item(target, request_json(request))
        return web.json_response(self.item_json(site, target, item, "fields"), status=201)

    async def get_item(
        self, request: web.Request, site: Site, list: str, item: str
    ) -> web.Response:
        """GET one item (``$expand=fields``)."""
        target = self.store.list_of(site, list)
        found = self.store.item(target, item)
        expand = _query(request).get("$expand")
        return web.json_response(self.item_json(site, target, found, expand))

    async def patch_item(
        self, request: web.Request, site: Site, list: str, item: str
    ) -> web.Response:
        """PATCH an item ``{"fields": {...}}`` (If-Match honoured): 200 listItem."""
        target = self.store.list_of(site, list)
        found = self.store.item(target, item)
        body = request_json(request)
        fields = body.get("fields", {}) if isinstance(body, dict) else None
        if_match = request.headers.get("If-Match")
        self.store.update_fields(target, found, fields, if_match)
        return web.json_response(self.item_json(site, target, found, "fields"))

    async def delete_item(
        self, request: web.Request, site: Site, list: str, item: str
    ) -> web.Response:
        """DELETE an item (If-Match honoured): 204."""
        target = self.store.list_of(site, list)
        found = self.store.item(target, item)
        self.store.delete_item(target, found, request.headers.get("If-Match"))
        return web.Response(status=204)

    async def get_fields(
        self, request: web.Request, site: Site, list: str, item: str
    ) -> web.Response:
        """GET an item's fieldValueSet."""
        found = self.store.item(self.store.list_of(site, list), item)
        return web.json_response(self.fields_json(found))

    async def patch_fields(
        self, request: web.Request, site: Site, list: str, item: str
    ) -> web.Response:
        """PATCH fields (If-Match honoured, 412 when stale): 200 with the fieldValueSet."""
        target = self.store.list_of(site, list)
        found = self.store.item(target, item)
        if_match = request.headers.get("If-Match")
        self.store.update_fields(target, found, request_json(request), if_match)
        return web.json_response(self.fields_json(found))

    async def get_drive(self, request: web.Request, site: Site) -> web.Response:
        """GET the site's default document library drive (the first library)."""
        library = next((x for x in site.lists.values() if x.drive_id), None)
        if library is None:
            raise not_found("drive")
        return web.json_response(self.sandbox.drive_json(site, library))

    async def get_drives(self, request: web.Request, site: Site) -> web.Response:
        """GET every document library drive of the site."""
        value = [self.sandbox.drive_json(site, x) for x in site.lists.values() if x.drive_id]
        return web.json_response({"value": value})


def list_items(target: SpList) -> list[Item]:
    """The current items of a list."""
    return [*target.items.values()]


def add_sharepoint_routes(app: web.Application, sandbox: GraphSandbox) -> None:
    """Register the catch-all ``/v1.0/sites/{tail}`` route."""
    routes = SharePointRoutes(sandbox)
    app.router.add_route("*", "/v1.0/sites/{tail:.*}", routes.dispatch, name="sites")
