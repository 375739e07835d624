"""Microsoft Graph ``checkMemberGroups`` for users, served by the ARM sandbox under ``/v1.0``.

``POST /v1.0/users/{id}/checkMemberGroups`` (also ``.../microsoft.graph.checkMemberGroups``,
the spelling of ``contracts/msgraph-v1.0-subset.openapi.yaml``) with
``{"groupIds": [...]}`` (at most 20) answers ``{"@odata.context": ..., "value": [...]}``:
the asked ids the user is a transitive member of. The user is found by object id or user
principal name. The token needs a Graph audience and an application role that may read
memberships (``GroupMember.Read.All``, ``Group.Read.All``, ``Directory.Read.All``,
``Directory.ReadWrite.All`` or ``User.Read.All``), else 403 ``Authorization_RequestDenied``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

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
        roles = set(request[CLAIMS_KEY].get("roles", []))
        if not roles & _READ_ROLES:
            message = "Insufficient privileges to complete the operation."
            raise GraphError(403, "Authorization_RequestDenied", message)
        group_ids = _group_ids(request_json(request))
        key = request.match_info["userId"]
        user = self.sandbox.directory.find(key)
        if user is None:
            message = (
                f"Resource '{key}' does not exist or one of its queried reference-property "
                "objects are not present."
            )
            raise GraphError(404, "Request_ResourceNotFound", message)
        body = {
            "@odata.context": (f"{request.url.origin()}/v1.0/$metadata#Collection(Edm.String)"),
            "value": self.sandbox.directory.check_member_groups(user, group_ids),
        }
        return web.json_response(body)


def add_graph_routes(app: web.Application, sandbox: ArmSandbox) -> None:
    """Register the Graph routes (both spellings of the action)."""
    routes = GraphRoutes(sandbox)
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
