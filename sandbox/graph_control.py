"""Control API of the Graph sandbox: JSON under ``/_sandbox/``, never logged, faulted or checked.

``GET    /_sandbox/requests``      200 ``{"requests": [entry...]}``
``DELETE /_sandbox/requests``      204, empties the log
``GET    /_sandbox/faults``        200 ``{"faults": [...]}``
``POST   /_sandbox/faults``        201 ``{"fault": fault}``; body: a fault
                                   (``sandbox.connector_faults``), e.g. ``{"status": 429,
                                   "retry_after": 3}``
``DELETE /_sandbox/faults``        204, drops every fault, leaves "down" mode
``PUT    /_sandbox/mode``          200 ``{"down", "downRetryAfter"}``; same body
``GET    /_sandbox/state``         200 every site, list, column, item and drive item
``POST   /_sandbox/sites``         201 site; body ``{"hostname"?, "path"}``
``POST   /_sandbox/reset``         204, forgets everything (files too)
``POST   /_sandbox/security/incidents``       201 a new Defender XDR incident; body: properties
                                              that override the generated ones
``POST   /_sandbox/security/seed``            201 ``{"value": [...]}``; body ``{"count"}``
``PATCH  /_sandbox/security/incidents/{id}``  200, changes it as the Defender portal would;
                                              ``{"readOnly": true}`` makes Warden's writes 403
``PATCH|DELETE /_sandbox/sharepoint/lists/{list}/items/{item}``, ``PUT|DELETE
/_sandbox/sharepoint/drives/{drive}/items/{item}[/content]``, ``POST /_sandbox/delta/expire``:
                                   out-of-band edits as a person, and expiring delta tokens
                                   (``sandbox.graph_outofband``)
``GET    /_sandbox/sharepoint``    200 text/html: a read-only page of sites, libraries,
                                   lists, items and files, as an auditor would browse it

Errors are Graph OData envelopes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler

from sandbox.arm_records import GraphError, SandboxError
from sandbox.connector_faults import Fault
from sandbox.graph_outofband import add_out_of_band_routes
from sandbox.graph_page import sharepoint_page

if TYPE_CHECKING:
    from sandbox.graph import GraphSandbox


async def _object(request: web.Request) -> dict[str, Any]:
    """Return the JSON object body (empty for none), or raise 400."""
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError:
        raise GraphError(400, "BadRequest", "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "The body must be a JSON object")
    return body


class _ControlRoutes:
    """Handlers of the control API, bound to one sandbox."""

    def __init__(self, sandbox: GraphSandbox) -> None:
        """Bind the handlers to ``sandbox``."""
        self.sandbox = sandbox

    async def get_requests(self, request: web.Request) -> web.Response:
        """Return the request log."""
        return web.json_response({"requests": [e.to_json() for e in self.sandbox.requests]})

    async def clear_requests(self, request: web.Request) -> web.Response:
        """Empty the request log."""
        self.sandbox.clear_requests()
        return web.Response(status=204)

    async def get_faults(self, request: web.Request) -> web.Response:
        """Return the pending faults."""
        return web.json_response({"faults": [f.to_json() for f in self.sandbox.faults.snapshot()]})

    async def add_fault(self, request: web.Request) -> web.Response:
        """Queue the fault in the body."""
        try:
            fault = Fault.from_json(await _object(request))
        except ValueError as exc:
            raise GraphError(400, "BadRequest", str(exc)) from None
        self.sandbox.add_fault(fault)
        return web.json_response({"fault": fault.to_json()}, status=201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        """Drop queued faults and leave down mode."""
        self.sandbox.clear_faults()
        return web.Response(status=204)

    async def put_mode(self, request: web.Request) -> web.Response:
        """Switch "down" mode (every Graph call answers 503)."""
        body = await _object(request)
        self.sandbox.down = bool(body.get("down", False))
        retry = body.get("downRetryAfter")
        self.sandbox.down_retry_after = float(retry) if isinstance(retry, (int, float)) else None
        mode = {"down": self.sandbox.down, "downRetryAfter": self.sandbox.down_retry_after}
        return web.json_response(mode)

    async def state(self, request: web.Request) -> web.Response:
        """Return the whole SharePoint state."""
        return web.json_response(self.sandbox.sharepoint.to_json())

    async def add_site(self, request: web.Request) -> web.Response:
        """Create a site by host and server-relative path."""
        body = await _object(request)
        path = body.get("path")
        if not isinstance(path, str) or not path.strip("/"):
            raise GraphError(400, "BadRequest", "'path' (like 'sites/Evidence') is required")
        site = self.sandbox.add_site(str(body.get("hostname") or "contoso.sharepoint.com"), path)
        return web.json_response({"id": site.id, "webUrl": site.web_url}, status=201)

    async def reset(self, request: web.Request) -> web.Response:
        """Forget everything."""
        self.sandbox.reset()
        return web.Response(status=204)

    async def add_incident(self, request: web.Request) -> web.Response:
        """Raise a Defender XDR incident."""
        made = self.sandbox.security.add_incident(await _object(request))
        return web.json_response(made, status=201)

    async def seed_incidents(self, request: web.Request) -> web.Response:
        """Raise generated Defender XDR incidents."""
        count = (await _object(request)).get("count")
        if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= 1000:
            raise GraphError(400, "BadRequest", "count must be an integer from 1 to 1000")
        return web.json_response({"value": self.sandbox.security.seed(count)}, status=201)

    async def portal_update(self, request: web.Request) -> web.Response:
        """Change a Defender XDR incident as the portal would (or make it read-only)."""
        found = self.sandbox.security.get(request.match_info["incidentId"])
        if found is None:
            raise GraphError(404, "NotFound", "Incident not found.")
        changes = await _object(request)
        if "readOnly" in changes:
            found.read_only = bool(changes.pop("readOnly"))
        if changes:
            self.sandbox.security.update(found, changes, "Megan Bowen")
        return web.json_response(found.render(expand_alerts=True))

    async def page(self, request: web.Request) -> web.Response:
        """Render the auditor's read-only page."""
        return web.Response(text=sharepoint_page(self.sandbox.sharepoint), content_type="text/html")


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn errors raised by a control handler into OData error answers."""
    try:
        return await handler(request)
    except SandboxError as err:
        return err.to_response()


def add_graph_control_routes(app: web.Application, sandbox: GraphSandbox) -> None:
    """Mount the control API on ``app`` as a sub-application under ``/_sandbox/``."""
    routes = _ControlRoutes(sandbox)
    control = web.Application(middlewares=[_errors])
    add = control.router.add_route
    add("GET", "/requests", routes.get_requests)
    add("DELETE", "/requests", routes.clear_requests)
    add("GET", "/faults", routes.get_faults)
    add("POST", "/faults", routes.add_fault)
    add("DELETE", "/faults", routes.clear_faults)
    add("PUT", "/mode", routes.put_mode)
    add("GET", "/state", routes.state)
    add("POST", "/sites", routes.add_site)
    add("POST", "/reset", routes.reset)
    add("GET", "/sharepoint", routes.page)
    add("POST", "/security/incidents", routes.add_incident)
    add("POST", "/security/seed", routes.seed_incidents)
    add("PATCH", "/security/incidents/{incidentId}", routes.portal_update)
    add_out_of_band_routes(control, sandbox)
    app.add_subapp("/_sandbox/", control)
