"""Control API of the ARM sandbox: JSON under ``/_sandbox/``, never logged, faulted or checked.

``GET    /_sandbox/requests``               200 ``{"requests": [entry...]}``
``DELETE /_sandbox/requests``               204, empties the log
``GET    /_sandbox/faults``                 200 ``{"faults": {"arm": [...], "graph": [...],
                                            "login": [...]}}``
``POST   /_sandbox/faults?service=arm``     201 ``{"fault": fault, "service": ...}``; body: a
                                            fault (``sandbox.connector_faults``); service
                                            ``arm`` (default), ``graph`` or ``login``
``DELETE /_sandbox/faults``                 204, drops every fault, leaves "down" mode
``GET    /_sandbox/mode``                   200 ``{"down": {service: retryAfter|null}}``
``PUT    /_sandbox/mode``                   200 same; body ``{"service", "down", "downRetryAfter"}``
``GET    /_sandbox/incidents``              200 ``{"value": [incident...]}``
``POST   /_sandbox/incidents``              201 incident; body ``{"name"?, "properties"?}``:
                                            a new incident appears, as from an analytics rule
``PATCH  /_sandbox/incidents/{id}``         200 incident; body ``{"properties": {...}}``: a
                                            change "in the portal" (new etag and timestamp)
``POST   /_sandbox/incidents/{id}/deployments`` 201 deployment; body ``{"name",
                                            "minutesBefore"?, "resourceId"?}``: the incident
                                            names the resource (default: one not deployed to
                                            within a day of its first alert), deployed that
                                            long before its first alert
``POST   /_sandbox/seed``                   201 ``{"value": [...]}``; body ``{"count": n}``
``GET    /_sandbox/users``                  200 ``{"value": [user...]}``
``PUT    /_sandbox/users/{id}/groups``      200 user; body ``{"groupIds": [...]}``
``PUT    /_sandbox/users/{id}/manager``     200 user; body ``{"managerId": id, UPN or null}``
``POST   /_sandbox/clock``                  200 ``{"now": ...}``; body ``{"advance": seconds}``
``POST   /_sandbox/reset``                  204, back to the initial data

Incident routes address the default workspace, or the one named by the query parameters
``subscription``, ``resourceGroup`` and ``workspace``. Errors are CloudError bodies.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler

from sandbox.arm_records import SERVICES, ArmError, SandboxError, Service
from sandbox.arm_seed import Scope
from sandbox.connector_faults import Fault

if TYPE_CHECKING:
    from sandbox.arm import ArmSandbox


async def _json_body(request: web.Request) -> Any:
    """Return the parsed JSON body (None if empty), raising 400 if it is not JSON."""
    try:
        return json.loads(await request.read() or b"null")
    except ValueError:
        raise ArmError(400, "BadRequest", "Request body is not valid JSON") from None


def _object(body: Any) -> dict[str, Any]:
    """Return a JSON object body (an empty one for no body), or raise 400."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ArmError(400, "BadRequest", "The body must be a JSON object")
    return body


def _service(value: object) -> Service:
    """Return a valid service name, or raise 400."""
    for service in SERVICES:
        if value == service:
            return service
    raise ArmError(400, "BadRequest", f"service must be one of {list(SERVICES)}")


class _ControlRoutes:
    """Handlers of the control API, bound to one sandbox."""

    def __init__(self, sandbox: ArmSandbox) -> None:
        """Bind the handlers to ``sandbox``."""
        self.sandbox = sandbox

    def _scope(self, request: web.Request) -> Scope | None:
        """Return the workspace named in the query, or None for the default one."""
        query = request.query
        if "workspace" not in query:
            return None
        return Scope(
            query.get("subscription", ""), query.get("resourceGroup", ""), query["workspace"]
        )

    def _guard(self, request: web.Request) -> Scope | None:
        """Return the query's workspace after checking that it is served (404 otherwise)."""
        scope = self._scope(request)
        try:
            self.sandbox.workspace(scope)
        except KeyError as exc:
            raise ArmError(404, "ResourceNotFound", str(exc.args[0])) from None
        return scope

    async def get_requests(self, request: web.Request) -> web.Response:
        """Return the request log."""
        return web.json_response({"requests": [e.to_json() for e in self.sandbox.requests]})

    async def clear_requests(self, request: web.Request) -> web.Response:
        """Empty the request log."""
        self.sandbox.clear_requests()
        return web.Response(status=204)

    async def get_faults(self, request: web.Request) -> web.Response:
        """Return the pending faults of every service."""
        faults = {
            service: [fault.to_json() for fault in queue.snapshot()]
            for service, queue in self.sandbox.faults.items()
        }
        return web.json_response({"faults": faults})

    async def add_fault(self, request: web.Request) -> web.Response:
        """Queue the fault in the body for the service in the query."""
        service = _service(request.query.get("service", "arm"))
        try:
            fault = Fault.from_json(await _json_body(request))
        except ValueError as exc:
            raise ArmError(400, "BadRequest", str(exc)) from None
        self.sandbox.add_fault(fault, service)
        return web.json_response({"fault": fault.to_json(), "service": service}, status=201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        """Drop queued faults and leave down mode."""
        self.sandbox.clear_faults()
        return web.Response(status=204)

    def _mode(self) -> dict[str, Any]:
        """Return the down switches of every service that is down."""
        down = {s: self.sandbox.down_retry_after(s) for s in SERVICES if self.sandbox.is_down(s)}
        return {"down": down}

    async def get_mode(self, request: web.Request) -> web.Response:
        """Return the mode switches."""
        return web.json_response(self._mode())

    async def put_mode(self, request: web.Request) -> web.Response:
        """Switch one service's down mode."""
        body = _object(await _json_body(request))
        service = _service(body.get("service", "arm"))
        down, retry_after = body.get("down", True), body.get("downRetryAfter")
        if not isinstance(down, bool) or not (
            retry_after is None or (isinstance(retry_after, (int, float)) and retry_after >= 0)
        ):
            raise ArmError(400, "BadRequest", "down must be a boolean, downRetryAfter a number")
        self.sandbox.set_down(down, retry_after, service)
        return web.json_response(self._mode())

    async def list_incidents(self, request: web.Request) -> web.Response:
        """Return every incident of the workspace."""
        return web.json_response({"value": self.sandbox.incidents(self._guard(request))})

    async def create_incident(self, request: web.Request) -> web.Response:
        """Make a new incident appear."""
        body = _object(await _json_body(request))
        name, properties = body.get("name"), body.get("properties")
        if not (name is None or isinstance(name, str)) or not (
            properties is None or isinstance(properties, dict)
        ):
            raise ArmError(400, "BadRequest", "name must be a string, properties an object")
        try:
            made = self.sandbox.create_incident(properties, name=name, scope=self._guard(request))
        except ValueError as exc:
            raise ArmError(400, "BadRequest", str(exc)) from None
        return web.json_response(made, status=201)

    async def portal_update(self, request: web.Request) -> web.Response:
        """Change an incident as the portal would."""
        changes = _object(await _json_body(request)).get("properties")
        if not isinstance(changes, dict):
            raise ArmError(400, "BadRequest", "properties must be an object")
        try:
            updated = self.sandbox.portal_update(
                request.match_info["incidentId"], self._guard(request), **changes
            )
        except KeyError as exc:
            raise ArmError(404, "NotFound", str(exc.args[0])) from None
        except ValueError as exc:
            raise ArmError(400, "BadRequest", str(exc)) from None
        return web.json_response(updated)

    async def deploy(self, request: web.Request) -> web.Response:
        """Deploy a resource the incident names (added when new) before its first alert."""
        body = _object(await _json_body(request))
        name, minutes = body.get("name"), body.get("minutesBefore", 12)
        resource_id = body.get("resourceId")
        if not isinstance(name, str) or not name or not isinstance(minutes, int | float):
            raise ArmError(400, "BadRequest", "name must be a string, minutesBefore a number")
        if not (resource_id is None or isinstance(resource_id, str)):
            raise ArmError(400, "BadRequest", "resourceId must be a string")
        try:
            made = self.sandbox.deploy_before_incident(
                request.match_info["incidentId"], name, minutes, resource_id, self._guard(request)
            )
        except KeyError as exc:
            raise ArmError(404, "NotFound", str(exc.args[0])) from None
        except LookupError as exc:
            raise ArmError(409, "Conflict", str(exc)) from None
        return web.json_response(made, status=201)

    async def seed(self, request: web.Request) -> web.Response:
        """Add generated incidents."""
        count = _object(await _json_body(request)).get("count")
        if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= 10000:
            raise ArmError(400, "BadRequest", "count must be an integer from 1 to 10000")
        made = self.sandbox.seed(count, scope=self._guard(request))
        return web.json_response({"value": made}, status=201)

    async def users(self, request: web.Request) -> web.Response:
        """Return the directory users."""
        return web.json_response({"value": [u.to_json() for u in self.sandbox.directory.users()]})

    async def set_groups(self, request: web.Request) -> web.Response:
        """Replace a user's group memberships."""
        ids = _object(await _json_body(request)).get("groupIds")
        if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
            raise ArmError(400, "BadRequest", "groupIds must be an array of strings")
        user = self.sandbox.set_member_groups(request.match_info["userId"], ids)
        return web.json_response(user.to_json())

    async def set_manager(self, request: web.Request) -> web.Response:
        """Set (or, with null, remove) a user's manager."""
        manager = _object(await _json_body(request)).get("managerId")
        if manager is not None and not isinstance(manager, str):
            raise ArmError(400, "BadRequest", "managerId must be a user id, a UPN or null")
        try:
            user = self.sandbox.directory.set_manager(request.match_info["userId"], manager)
        except KeyError as exc:
            raise ArmError(404, "NotFound", f"no user {exc.args[0]}") from None
        return web.json_response(user.to_json())

    async def clock(self, request: web.Request) -> web.Response:
        """Advance the sandbox clock."""
        advance = _object(await _json_body(request)).get("advance")
        if not isinstance(advance, (int, float)) or isinstance(advance, bool) or advance < 0:
            raise ArmError(400, "BadRequest", "advance must be a non-negative number of seconds")
        self.sandbox.advance_clock(advance)
        return web.json_response({"now": self.sandbox.now().isoformat()})

    async def reset(self, request: web.Request) -> web.Response:
        """Go back to the initial data."""
        self.sandbox.reset()
        return web.Response(status=204)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn errors raised by a control handler into CloudError answers."""
    try:
        return await handler(request)
    except SandboxError as err:
        return err.to_response()


def add_control_routes(app: web.Application, sandbox: ArmSandbox) -> None:
    """Mount the control API on ``app`` as a sub-application under ``/_sandbox/``."""
    routes = _ControlRoutes(sandbox)
    control = web.Application(middlewares=[_errors])
    add = control.router.add_route
    add("GET", "/requests", routes.get_requests)
    add("DELETE", "/requests", routes.clear_requests)
    add("GET", "/faults", routes.get_faults)
    add("POST", "/faults", routes.add_fault)
    add("DELETE", "/faults", routes.clear_faults)
    add("GET", "/mode", routes.get_mode)
    add("PUT", "/mode", routes.put_mode)
    add("GET", "/incidents", routes.list_incidents)
    add("POST", "/incidents", routes.create_incident)
    add("PATCH", "/incidents/{incidentId}", routes.portal_update)
    add("POST", "/incidents/{incidentId}/deployments", routes.deploy)
    add("POST", "/seed", routes.seed)
    add("GET", "/users", routes.users)
    add("PUT", "/users/{userId}/groups", routes.set_groups)
    add("PUT", "/users/{userId}/manager", routes.set_manager)
    add("POST", "/clock", routes.clock)
    add("POST", "/reset", routes.reset)
    app.add_subapp("/_sandbox/", control)
