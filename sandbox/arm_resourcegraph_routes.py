"""Resource Graph routes of the ARM sandbox, and their control API.

ARM side (behind the sandbox middleware: log, faults, token, api-version 2022-10-01):
``POST /providers/Microsoft.ResourceGraph/resources`` (swagger operation id ``Resources``;
see ``sandbox.arm_resourcegraph``). Every answer, a refusal included, carries the quota
headers ``x-ms-user-quota-remaining`` and ``x-ms-user-quota-resets-after``.

Control side, JSON under ``/_sandbox/resourcegraph/`` (never logged, faulted or checked):

``GET    /_sandbox/resourcegraph/resources``       200 ``{"value": [row...]}``
``POST   /_sandbox/resourcegraph/resources``       201 row; body: a row, at least ``id``
``DELETE /_sandbox/resourcegraph/resources?id=…``  204 (gone) or 404
``POST   /_sandbox/resourcegraph/seed``            201 ``{"count": n}``; body ``{"count": n,
                                                   "seed"?: int, "subscriptions"?: 1..4}``
``PUT    /_sandbox/resourcegraph/quota``           200 ``{"limit", "window"}``; body the same
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler

from sandbox.arm_http import CLAIMS_KEY, request_json
from sandbox.arm_records import ArmError, SandboxError
from sandbox.arm_resourcegraph import (
    RESOURCE_GRAPH_API_VERSION,
    ResourceGraph,
    ResourceGraphError,
    resets_after,
)

if TYPE_CHECKING:
    from sandbox.arm import ArmSandbox

_PATH = re.compile(r"^/providers/Microsoft\.ResourceGraph/resources/?$", re.IGNORECASE)
_NAMESPACE = re.compile(r"^/providers/Microsoft\.ResourceGraph(/|$)", re.IGNORECASE)

OPERATION = "Resources"
"""The swagger operation id of a query, as the request log names it."""


def is_resource_graph_path(path: str) -> bool:
    """Tell whether an ARM path is in the Microsoft.ResourceGraph namespace."""
    return _NAMESPACE.match(path) is not None


def served_api_version(path: str, default: str) -> str:
    """The api-version served for ``path`` (``default`` outside Resource Graph)."""
    return RESOURCE_GRAPH_API_VERSION if is_resource_graph_path(path) else default


async def resources(graph: ResourceGraph, request: web.Request) -> web.Response:
    """Answer one Resource Graph request (the sandbox middleware has already run)."""
    if _PATH.match(request.path) is None:
        message = (
            "The resource type could not be found in the namespace "
            f"'Microsoft.ResourceGraph' for api version '{RESOURCE_GRAPH_API_VERSION}'."
        )
        raise ArmError(404, "InvalidResourceType", message)
    if request.method != "POST":
        message = f"The requested resource does not support http method '{request.method}'."
        raise ArmError(405, "MethodNotAllowed", message, {"Allow": "POST"})
    client = str(request[CLAIMS_KEY].get("appid") or request[CLAIMS_KEY].get("oid") or "")
    allowed, remaining, wait = graph.quota.take(client, graph.clock())
    headers = {
        "x-ms-user-quota-remaining": str(remaining),
        "x-ms-user-quota-resets-after": resets_after(wait),
    }
    try:
        if not allowed:
            detail = {
                "code": "RateLimiting",
                "message": "Client application has been throttled and should not attempt to "
                "repeat the request until an amount of time has elapsed. Please see "
                "https://aka.ms/resourcegraph-throttling for help.",
            }
            raise ResourceGraphError(429, "RateLimiting", [detail])
        answer = graph.query(request_json(request))
    except ResourceGraphError as exc:
        return web.json_response(exc.body(), status=exc.status, headers=headers)
    return web.json_response(answer, headers=headers)


async def _object(request: web.Request) -> dict[str, Any]:
    """The JSON object body (an empty one for none); 400 otherwise."""
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError:
        raise ArmError(400, "BadRequest", "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ArmError(400, "BadRequest", "The body must be a JSON object")
    return body


def _count(value: object, low: int, high: int, name: str) -> int:
    """``value`` when it is an integer from ``low`` to ``high``; 400 otherwise."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ArmError(400, "BadRequest", f"{name} must be an integer from {low} to {high}")
    return value


class _Control:
    """Control handlers over one sandbox's Resources table."""

    def __init__(self, sandbox: ArmSandbox) -> None:
        """Bind the handlers to ``sandbox``."""
        self.graph = sandbox.resource_graph

    async def list_rows(self, request: web.Request) -> web.Response:
        """Every resource."""
        return web.json_response({"value": list(self.graph.rows.values())})

    async def put_row(self, request: web.Request) -> web.Response:
        """Add or replace one resource."""
        try:
            row = self.graph.put(await _object(request))
        except ValueError as exc:
            raise ArmError(400, "BadRequest", str(exc)) from None
        return web.json_response(row, status=201)

    async def delete_row(self, request: web.Request) -> web.Response:
        """Delete one resource (``?id=``)."""
        if not self.graph.remove(request.query.get("id", "")):
            raise ArmError(404, "ResourceNotFound", "no such resource")
        return web.Response(status=204)

    async def seed(self, request: web.Request) -> web.Response:
        """Add generated resources."""
        body = await _object(request)
        count = _count(body.get("count"), 1, 200_000, "count")
        seed = body.get("seed", 0)
        subscriptions = _count(body.get("subscriptions", 4), 1, 4, "subscriptions")
        if not isinstance(seed, int):
            raise ArmError(400, "BadRequest", "seed must be an integer")
        self.graph.seed(count, random_seed=seed, subscriptions=subscriptions)
        return web.json_response({"count": count}, status=201)

    async def quota(self, request: web.Request) -> web.Response:
        """Change the per-user quota."""
        body = await _object(request)
        limit = _count(body.get("limit", self.graph.quota.limit), 1, 1_000_000, "limit")
        window = body.get("window", self.graph.quota.window)
        if not isinstance(window, (int, float)) or isinstance(window, bool) or window <= 0:
            raise ArmError(400, "BadRequest", "window must be a positive number of seconds")
        self.graph.quota.limit, self.graph.quota.window = limit, float(window)
        self.graph.quota.clear()
        return web.json_response({"limit": limit, "window": window})


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn errors raised by a control handler into CloudError answers."""
    try:
        return await handler(request)
    except SandboxError as err:
        return err.to_response()


def add_resource_graph_routes(app: web.Application, sandbox: ArmSandbox) -> None:
    """Serve ``/providers/...`` (Resource Graph) and its control API."""

    async def dispatch(request: web.Request) -> web.Response:
        return await resources(sandbox.resource_graph, request)

    app.router.add_route("*", "/providers/{tail:.*}", dispatch, name="ResourceGraph")
    routes = _Control(sandbox)
    control = web.Application(middlewares=[_errors])
    control.router.add_route("GET", "/resources", routes.list_rows)
    control.router.add_route("POST", "/resources", routes.put_row)
    control.router.add_route("DELETE", "/resources", routes.delete_row)
    control.router.add_route("POST", "/seed", routes.seed)
    control.router.add_route("PUT", "/quota", routes.quota)
    app.add_subapp("/_sandbox/resourcegraph/", control)
