"""Microsoft Graph ``checkMemberGroups`` and ``manager`` of users, served under ``/v1.0``.

``POST /v1.0/users/{id}/checkMemberGroups`` (also ``.../microsoft.graph.checkMemberGroups``,
the spelling of ``contracts/msgraph-v1.0-subset.openapi.yaml``) with
``{"groupIds": [...]}`` (at most 20) answers ``{"@odata.context": ..., "value": [...]}``:
the asked ids the user is a transitive member of. The user is found by object id or user
principal name. The token needs a Graph audience and an application role that may read
memberships (``GroupMember.Read.All``, ``Group.Read.All``, ``Directory.Read.All``,
``Directory.ReadWrite.All`` or ``User.Read.All``), else 403 ``Authorization_RequestDenied``.

``GET /v1.0/users/{id}/manager`` answers the manager as a directory object (a
``#microsoft.graph.user``), or 404 ``Request_ResourceNotFound`` when the user has none; it
needs ``User.Read.All``, ``Directory.Read.All`` or ``Directory.ReadWrite.All``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from sandbox.arm_approles import add_app_role_routes
from sandbox.arm_http import CLAIMS_KEY, request_json
from sandbox.arm_records import GraphError

if TYPE_CHECKING:
    from sandbox.arm import ArmSandbox

MAX_GROUP_IDS = 20
"""Graph checks at most this many groups per request."""

_READ_ROLES = frozenset(
    {
        "GroupMember.Read.All",
        "Group.Read.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "User.Read.All",
    }
)

_USER_ROLES = frozenset({"User.Read.All", "Directory.Read.All", "Directory.ReadWrite.All"})


def _not_found(key: str) -> GraphError:
    """Graph's 404 for a missing user or reference property."""
    message = (
        f"Resource '{key}' does not exist or one of its queried reference-property "
        "objects are not present."
    )
    return GraphError(404, "Request_ResourceNotFound", message)


def _require(request: web.Request, allowed: frozenset[str]) -> None:
    """Raise Graph's 403 unless the token carries one of the ``allowed`` roles."""
    if not set(request[CLAIMS_KEY].get("roles", [])) & allowed:
        message = "Insufficient privileges to complete the operation."
        raise GraphError(403, "Authorization_RequestDenied", message)


def _group_ids(body: object) -> list[str]:
    """Return the ``groupIds`` of a request body, or raise Graph's 400."""
    ids = body.get("groupIds") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
        message = "Invalid request: 'groupIds' must be an array of strings."
        raise GraphError(400, "Request_BadRequest", message)
    if len(ids) > MAX_GROUP_IDS:
        message = f"Too many group ids: at most {MAX_GROUP_IDS} may be checked per request."
        raise GraphError(400, "Request_BadRequest", message)
    return ids


class GraphRoutes:
    """The Graph handler, bound to one sandbox."""

    def __init__(self, sandbox: ArmSandbox) -> None:
        """Bind the handler to ``sandbox``."""
        self.sandbox = sandbox

    async def check_member_groups(self, request: web.Request) -> web.Response:
        """Answer checkMemberGroups for the user in the path."""
        _require(request, _READ_ROLES)
        group_ids = _group_ids(request_json(request))
        key = request.match_info["userId"]
        user = self.sandbox.directory.find(key)
        if user is None:
            raise _not_found(key)
        body = {
            "@odata.context": (f"{request.url.origin()}/v1.0/$metadata#Collection(Edm.String)"),
            "value": self.sandbox.directory.check_member_groups(user, group_ids),
        }
        return web.json_response(body)

    async def manager(self, request: web.Request) -> web.Response:
        """Answer the manager of the user in the path, or 404 when there is none."""
        _require(request, _USER_ROLES)
        key = request.match_info["userId"]
        user = self.sandbox.directory.find(key)
        if user is None:
            raise _not_found(key)
        boss = self.sandbox.directory.manager_of(user)
        if boss is None:
            raise _not_found("manager")
        context = f"{request.url.origin()}/v1.0/$metadata#directoryObjects/$entity"
        return web.json_response({"@odata.context": context, **boss.graph_json()})


def add_graph_routes(app: web.Application, sandbox: ArmSandbox) -> None:
    """Register the Graph routes (both spellings of the action), groups and app roles too."""
    routes = GraphRoutes(sandbox)
    add_app_role_routes(app, sandbox)
    app.router.add_post(
        "/v1.0/users/{userId}/checkMemberGroups",
        routes.check_member_groups,
        name="user_checkMemberGroup",
    )
    app.router.add_post(
        "/v1.0/users/{userId}/microsoft.graph.checkMemberGroups",
        routes.check_member_groups,
        name="user_checkMemberGroup_qualified",
    )
    app.router.add_get("/v1.0/users/{userId}/manager", routes.manager, name="user_manager")
