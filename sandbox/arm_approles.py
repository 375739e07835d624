"""Microsoft Graph groups, service principals and app role assignments, served under ``/v1.0``.

* ``GET /v1.0/groups/{id}`` answers a ``#microsoft.graph.group`` (id, displayName), or 404
  ``Request_ResourceNotFound``; it needs ``GroupMember.Read.All``, ``Group.Read.All`` or
  ``Directory.Read.All``.
* ``GET /v1.0/servicePrincipals/{id}`` answers a ``#microsoft.graph.servicePrincipal`` with
  its ``appRoles``; it needs ``Application.Read.All`` or ``Directory.Read.All``.
* ``GET /v1.0/users/{id}/appRoleAssignments`` lists the app role assignments granted to the
  user and, as Graph does, those granted to groups the user is a direct member of
  (``principalType`` ``Group``); ``$filter=resourceId eq {guid}`` narrows them to one
  application. It needs ``Directory.Read.All`` or ``AppRoleAssignment.ReadWrite.All``.

A role assigned to nobody in particular (``00000000-…``, the default access) is not modelled.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.arm_http import CLAIMS_KEY
from sandbox.arm_records import GraphError

if TYPE_CHECKING:
    from sandbox.arm import ArmSandbox

_GROUP_ROLES = frozenset({"GroupMember.Read.All", "Group.Read.All", "Directory.Read.All"})
_APP_ROLES = frozenset({"Application.Read.All", "Directory.Read.All"})
_ASSIGNMENT_ROLES = frozenset({"Directory.Read.All", "AppRoleAssignment.ReadWrite.All"})
_RESOURCE_FILTER = re.compile(r"^\s*resourceId\s+eq\s+([0-9a-fA-F-]{36})\s*$")


@dataclass
class ServicePrincipal:
    """An enterprise application: object id, app id, display name and app roles by value."""

    object_id: str
    app_id: str
    display_name: str
    app_roles: dict[str, str] = field(default_factory=dict)
    """App role id by value (``Warden.Reviewer`` → a GUID)."""

    def graph_json(self) -> dict[str, Any]:
        """Return the Graph ``microsoft.graph.servicePrincipal`` form."""
        roles = [
            {
                "id": role_id,
                "value": value,
                "displayName": value,
                "description": value,
                "allowedMemberTypes": ["User"],
                "isEnabled": True,
                "origin": "Application",
            }
            for value, role_id in sorted(self.app_roles.items())
        ]
        return {
            "id": self.object_id,
            "appId": self.app_id,
            "displayName": self.display_name,
            "appRoles": roles,
        }


@dataclass
class Assignment:
    """An app role of ``resource`` assigned to a user or a group."""

    principal_id: str
    principal_type: str
    principal_name: str
    resource: ServicePrincipal
    app_role_id: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def graph_json(self) -> dict[str, Any]:
        """Return the Graph ``microsoft.graph.appRoleAssignment`` form."""
        return {
            "id": self.id,
            "appRoleId": self.app_role_id,
            "createdDateTime": "2026-01-01T00:00:00Z",
            "principalDisplayName": self.principal_name,
            "principalId": self.principal_id,
            "principalType": self.principal_type,
            "resourceDisplayName": self.resource.display_name,
            "resourceId": self.resource.object_id,
        }


class AppDirectory:
    """Groups' names, service principals and app role assignments of the sandbox tenant."""

    def __init__(self) -> None:
        """Start empty."""
        self.groups: dict[str, str] = {}
        self.principals: dict[str, ServicePrincipal] = {}
        self.assignments: list[Assignment] = []

    def add_group(self, display_name: str, *, object_id: str | None = None) -> str:
        """Name a group (a new object id unless given) and return its id."""
        group_id = (object_id or str(uuid.uuid4())).lower()
        self.groups[group_id] = display_name
        return group_id

    def add_service_principal(
        self, display_name: str, app_roles: list[str], *, object_id: str | None = None
    ) -> ServicePrincipal:
        """Add an enterprise application with app roles (by value, each a new id)."""
        principal = ServicePrincipal(
            (object_id or str(uuid.uuid4())).lower(),
            str(uuid.uuid4()),
            display_name,
            {value: str(uuid.uuid4()) for value in app_roles},
        )
        self.principals[principal.object_id] = principal
        return principal

    def assign(self, principal_id: str, resource_id: str, value: str, *, name: str = "") -> None:
        """Assign the app role ``value`` of ``resource_id`` to a user or a named group."""
        resource = self.principals[resource_id.lower()]
        kind = "Group" if principal_id.lower() in self.groups else "User"
        shown = name or self.groups.get(principal_id.lower(), principal_id)
        self.assignments.append(
            Assignment(principal_id.lower(), kind, shown, resource, resource.app_roles[value])
        )

    def assignments_of(self, user_id: str, groups: set[str]) -> list[Assignment]:
        """The user's assignments and those of the groups in ``groups`` (direct member)."""
        mine = {user_id.lower()} | {group.lower() for group in groups}
        return [item for item in self.assignments if item.principal_id in mine]


def _require(request: web.Request, allowed: frozenset[str]) -> None:
    if not set(request[CLAIMS_KEY].get("roles", [])) & allowed:
        message = "Insufficient privileges to complete the operation."
        raise GraphError(403, "Authorization_RequestDenied", message)


def _not_found(key: str) -> GraphError:
    message = (
        f"Resource '{key}' does not exist or one of its queried reference-property "
        "objects are not present."
    )
    return GraphError(404, "Request_ResourceNotFound", message)


class AppRoleRoutes:
    """The handlers, bound to one sandbox."""

    def __init__(self, sandbox: ArmSandbox) -> None:
        """Bind the handlers to ``sandbox``."""
        self.sandbox = sandbox

    @property
    def apps(self) -> AppDirectory:
        """The sandbox's groups, service principals and assignments."""
        return self.sandbox.apps

    async def group(self, request: web.Request) -> web.Response:
        """Answer a group by object id."""
        _require(request, _GROUP_ROLES)
        key = request.match_info["groupId"].lower()
        if key not in self.apps.groups:
            raise _not_found(key)
        context = f"{request.url.origin()}/v1.0/$metadata#groups/$entity"
        body = {"@odata.context": context, "id": key, "displayName": self.apps.groups[key]}
        return web.json_response(body)

    async def service_principal(self, request: web.Request) -> web.Response:
        """Answer a service principal by object id, with its app roles."""
        _require(request, _APP_ROLES)
        key = request.match_info["principalId"].lower()
        principal = self.apps.principals.get(key)
        if principal is None:
            raise _not_found(key)
        context = f"{request.url.origin()}/v1.0/$metadata#servicePrincipals/$entity"
        return web.json_response({"@odata.context": context, **principal.graph_json()})

    async def assignments(self, request: web.Request) -> web.Response:
        """List the user's app role assignments (theirs and their groups'), one page."""
        _require(request, _ASSIGNMENT_ROLES)
        key = request.match_info["userId"]
        user = self.sandbox.directory.find(key)
        if user is None:
            raise _not_found(key)
        found = self.apps.assignments_of(user.object_id, user.groups)
        wanted = request.query.get("$filter")
        if wanted is not None:
            match = _RESOURCE_FILTER.match(wanted)
            if match is None:
                raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
            found = [item for item in found if item.resource.object_id == match[1].lower()]
        context = f"{request.url.origin()}/v1.0/$metadata#users('{key}')/appRoleAssignments"
        body = {"@odata.context": context, "value": [item.graph_json() for item in found]}
        return web.json_response(body)


def add_app_role_routes(app: web.Application, sandbox: ArmSandbox) -> None:
    """Register the groups, service principals and app role assignment routes."""
    routes = AppRoleRoutes(sandbox)
    app.router.add_get("/v1.0/groups/{groupId}", routes.group, name="group_Get")
    app.router.add_get(
        "/v1.0/servicePrincipals/{principalId}", routes.service_principal, name="sp_Get"
    )
    app.router.add_get(
        "/v1.0/users/{userId}/appRoleAssignments",
        routes.assignments,
        name="user_appRoleAssignments_List",
    )
