"""Deployment routes of the ARM sandbox, and their control API.

ARM side (behind the sandbox middleware: log, faults, token, api-version 2024-03-01), under
``/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Resources/deployments``:
``GET`` the list (``Deployments_ListByResourceGroup``), ``GET /{name}`` (``Deployments_Get``)
and ``GET /{name}/operations`` (``DeploymentOperations_List``); see
``sandbox.arm_deployments``. Errors are ARM's CloudError.

Control side, JSON under ``/_sandbox/deployments/`` (never logged, faulted or checked):

``GET  /_sandbox/deployments/items``   200 ``{"value": [deployment...]}``
``POST /_sandbox/deployments/items``   201 deployment; body ``{"resourceId", "name",
                                       "minutesBefore"?, "before"?}``: a successful deployment
                                       of that resource, ``minutesBefore`` minutes before
                                       ``before`` (ISO time; default now)
``POST /_sandbox/deployments/seed``    201 ``{"count": n}``; body ``{"perGroup"?, "seed"?}``:
                                       deployments in the groups of the seeded resources
"""

from __future__ import annotations

import datetime
import json
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler

from sandbox.arm_deployments import DEPLOYMENTS_API_VERSION, DeploymentError, Deployments
from sandbox.arm_records import ArmError, SandboxError

if TYPE_CHECKING:
    from sandbox.arm import ArmSandbox

_PATH = re.compile(
    r"^(?P<group>/subscriptions/[^/]+/resourceGroups/[^/]+)/providers/Microsoft\.Resources"
    r"/deployments(?:/(?P<name>[^/]+)(?:/(?P<child>operations))?)?/?$",
    re.IGNORECASE,
)
_NAMESPACE = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Resources/", re.IGNORECASE
)


def is_deployments_path(path: str) -> bool:
    """Tell whether an ARM path is in a resource group's Microsoft.Resources namespace."""
    return _NAMESPACE.match(path) is not None


def served_api_version(path: str, default: str) -> str:
    """The api-version served for ``path`` (``default`` outside deployments)."""
    return DEPLOYMENTS_API_VERSION if is_deployments_path(path) else default


def deployments_operation(method: str, path: str) -> str:
    """The swagger operation id of a deployments request ("Unknown" if not served)."""
    found = _PATH.match(path)
    if found is None or method.upper() != "GET":
        return "Unknown"
    if found["child"]:
        return "DeploymentOperations_List"
    return "Deployments_Get" if found["name"] else "Deployments_ListByResourceGroup"


def _next_link(request: web.Request, token: str) -> str:
    """This request's URL with ``$skipToken`` replaced."""
    params = [(k, v) for k, v in request.query.items() if k.lower() != "$skiptoken"]
    params.append(("$skipToken", token))
    return str(request.url.origin().with_path(request.path).with_query(params))


async def deployments(store: Deployments, request: web.Request) -> web.Response:
    """Answer one deployments request (the sandbox middleware has already run)."""
    found = _PATH.match(request.path)
    if found is None:
        message = (
            "The resource type could not be found in the namespace 'Microsoft.Resources' "
            f"for api version '{DEPLOYMENTS_API_VERSION}'."
        )
        raise ArmError(404, "InvalidResourceType", message)
    if request.method != "GET":
        message = f"The requested resource does not support http method '{request.method}'."
        raise ArmError(405, "MethodNotAllowed", message, {"Allow": "GET"})
    query = {key.lower(): value for key, value in request.query.items()}
    try:
        if found["name"] is None:
            items, token = store.list(
                found["group"], query.get("$top"), query.get("$skiptoken"), query.get("$filter")
            )
            body: dict[str, Any] = {"value": items}
            if token is not None:
                body["nextLink"] = _next_link(request, token)
            return web.json_response(body)
        stored = store.get(found["group"], found["name"])
        if found["child"]:
            top = query.get("$top")
            operations = stored.operations()
            if top is not None and top.isdigit():
                operations = operations[: int(top)]
            return web.json_response({"value": operations})
        return web.json_response(stored.resource)
    except DeploymentError as exc:
        raise ArmError(exc.status, exc.code, exc.message) from None


async def _object(request: web.Request) -> dict[str, Any]:
    """The JSON object body (an empty one for none); 400 otherwise."""
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError:
        raise ArmError(400, "BadRequest", "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ArmError(400, "BadRequest", "The body must be a JSON object")
    return body


class _Control:
    """Control handlers over one sandbox's deployments."""

    def __init__(self, sandbox: ArmSandbox) -> None:
        """Bind the handlers to ``sandbox``."""
        self.sandbox = sandbox

    async def list_all(self, request: web.Request) -> web.Response:
        """Every deployment of every group."""
        groups = self.sandbox.deployments.groups.values()
        return web.json_response({"value": [d.resource for g in groups for d in g.values()]})

    async def add(self, request: web.Request) -> web.Response:
        """A deployment of one resource, some minutes before a moment."""
        body = await _object(request)
        resource_id, name = body.get("resourceId"), body.get("name")
        minutes = body.get("minutesBefore", 0)
        if not isinstance(resource_id, str) or not isinstance(name, str) or not name:
            raise ArmError(400, "BadRequest", "resourceId and name are required strings")
        if not isinstance(minutes, (int, float)) or isinstance(minutes, bool):
            raise ArmError(400, "BadRequest", "minutesBefore must be a number")
        before = self.sandbox.now()
        if isinstance(body.get("before"), str):
            before = datetime.datetime.fromisoformat(body["before"].replace("Z", "+00:00"))
        try:
            stored = self.sandbox.deployments.deploy_before(resource_id, before, minutes, name)
        except ValueError as exc:
            raise ArmError(400, "BadRequest", str(exc)) from None
        return web.json_response(stored.resource, status=201)

    async def seed(self, request: web.Request) -> web.Response:
        """Deployments in the groups of the seeded resources (and before incidents)."""
        body = await _object(request)
        per_group, seed = body.get("perGroup", 6), body.get("seed", 0)
        if not isinstance(per_group, int) or not isinstance(seed, int) or not 1 <= per_group <= 500:
            raise ArmError(400, "BadRequest", "perGroup (1..500) and seed must be integers")
        count = self.sandbox.seed_deployments(per_group=per_group, random_seed=seed)
        return web.json_response({"count": count}, status=201)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn errors raised by a control handler into CloudError answers."""
    try:
        return await handler(request)
    except SandboxError as err:
        return err.to_response()


def add_deployment_control_routes(app: web.Application, sandbox: ArmSandbox) -> None:
    """Serve the deployments' control API (the ARM routes go through ``ArmRoutes``)."""
    routes = _Control(sandbox)
    control = web.Application(middlewares=[_errors])
    control.router.add_route("GET", "/items", routes.list_all)
    control.router.add_route("POST", "/items", routes.add)
    control.router.add_route("POST", "/seed", routes.seed)
    app.add_subapp("/_sandbox/deployments/", control)
