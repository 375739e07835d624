"""Graph users by principal name, the Teams app catalog, personal installs and their chats.

Served under ``/v1.0`` as Graph does (``contracts/msgraph-v1.0-supplement.openapi.yaml``):

``GET  /users/{id or upn}?$select=...``  the user (404 ``Request_ResourceNotFound``);
    ``User.Read.All`` or ``Directory.Read*.All``
``GET  /appCatalogs/teamsApps?$filter=externalId eq '<id>'``  the organisation's apps
    with that external id (``AppCatalog.Read*.All`` or ``Directory.Read*.All``)
``POST /users/{id}/teamwork/installedApps``  body ``{"teamsApp@odata.bind":
    ".../appCatalogs/teamsApps/{appId}"}``: 201 without a body; 409 ``Conflict`` when the
    app is already installed for the user; 404 for an unknown user or app; 403 when user
    installs are blocked (``Teamwork.block_installs``) or a ``TeamsAppInstallation.*ForUser``
    role is missing
``GET  /users/{id}/teamwork/installedApps?$expand=teamsApp&$filter=teamsApp/externalId eq
    '<id>'``  the user's installations (with the app when expanded)
``GET  /users/{id}/teamwork/installedApps/{installationId}/chat``  the one-on-one chat
    between the user and the app's bot (``19:{user}_{app}@unq.gbl.spaces``)

Users are the ARM sandbox's directory (``sandbox.arm_directory``). The control API
(``/_sandbox/teamwork``: ``GET`` the state; ``POST`` ``{"blockInstalls": bool}`` or
``{"publish": {"externalId", "displayName"}}``) is for tests and the Playground.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sandbox.arm_directory import Directory, DirectoryUser
from sandbox.arm_http import CLAIMS_KEY, request_json
from sandbox.arm_records import GraphError

_USER_ROLES = frozenset(
    {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)
_CATALOG_ROLES = frozenset(
    {"AppCatalog.Read.All", "AppCatalog.ReadWrite.All", "Directory.Read.All"}
)
_INSTALL_ROLES = frozenset(
    {
        "TeamsAppInstallation.ReadWriteSelfForUser.All",
        "TeamsAppInstallation.ReadWriteForUser.All",
        "TeamsAppInstallation.ReadWriteAndConsentForUser.All",
        "TeamsAppInstallation.ReadWriteAndConsentSelfForUser.All",
    }
)
_READ_INSTALL_ROLES = _INSTALL_ROLES | {
    "TeamsAppInstallation.ReadForUser.All",
    "TeamsAppInstallation.ReadSelfForUser.All",
}
_EXTERNAL = re.compile(r"^\s*(?:teamsApp/)?externalId eq '((?:[^']|'')*)'\s*$")
_BIND = re.compile(r"/appCatalogs/teamsApps/([^/]+)$")


@dataclass
class Installation:
    """An app installed in one user's personal scope, and the chat it opened."""

    id: str
    app_id: str
    chat_id: str


@dataclass
class Teamwork:
    """The organisation's app catalog and every user's personal installations."""

    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    installations: dict[str, list[Installation]] = field(default_factory=dict)
    block_installs: bool = False

    def publish(self, external_id: str, display_name: str = "Warden") -> dict[str, Any]:
        """Put an app in the organisation's catalog (once per external id); return it."""
        for app in self.apps.values():
            if app["externalId"] == external_id:
                return app
        app = {
            "id": str(uuid.uuid4()),
            "externalId": external_id,
            "displayName": display_name,
            "distributionMethod": "organization",
        }
        self.apps[app["id"]] = app
        return app

    def installed_for(self, user_id: str) -> list[Installation]:
        """The user's installations (object id, any case)."""
        return self.installations.get(user_id.lower(), [])

    def install(self, user: DirectoryUser, app_id: str) -> Installation:
        """Install ``app_id`` for ``user``; GraphError 409 when it already is."""
        mine = self.installations.setdefault(user.object_id.lower(), [])
        if any(item.app_id == app_id for item in mine):
            message = "The app is already installed for this user."
            raise GraphError(409, "Conflict", message)
        external = self.apps[app_id]["externalId"]
        chat = f"19:{user.object_id.lower()}_{external}@unq.gbl.spaces"
        made = Installation(str(uuid.uuid4()), app_id, chat)
        mine.append(made)
        return made

    def to_json(self) -> dict[str, Any]:
        """The state, for the control API."""
        return {
            "apps": list(self.apps.values()),
            "blockInstalls": self.block_installs,
            "installations": {
                user: [vars(item) for item in items] for user, items in self.installations.items()
            },
        }


def _require(request: web.Request, allowed: frozenset[str]) -> None:
    """Graph's 403 unless the token carries one of the ``allowed`` application roles."""
    if not set(request[CLAIMS_KEY].get("roles", [])) & allowed:
        message = "Insufficient privileges to complete the operation."
        raise GraphError(403, "Authorization_RequestDenied", message)


def _not_found(what: str) -> GraphError:
    message = f"Resource '{what}' does not exist or one of its queried reference-property objects are not present."  # noqa: E501
    return GraphError(404, "Request_ResourceNotFound", message)


def _filtered(request: web.Request) -> str | None:
    """The external id of an ``externalId eq '…'`` filter; None without a filter."""
    text = request.query.get("$filter")
    if text is None:
        return None
    match = _EXTERNAL.match(text)
    if match is None:
        raise GraphError(400, "BadRequest", f"Unsupported filter: {text}")
    return match.group(1).replace("''", "'")


class TeamworkRoutes:
    """The handlers, bound to a directory and a catalog."""

    def __init__(self, directory: Directory, teamwork: Teamwork) -> None:
        self.directory = directory
        self.teamwork = teamwork

    def _user(self, request: web.Request) -> DirectoryUser:
        key = request.match_info["userId"]
        found = self.directory.find(key)
        if found is None:
            raise _not_found(key)
        return found

    async def user(self, request: web.Request) -> web.Response:
        """One user, with only the ``$select``-ed properties when asked."""
        _require(request, _USER_ROLES)
        body = self._user(request).graph_json()
        body.pop("@odata.type")
        wanted = [p for p in request.query.get("$select", "").split(",") if p]
        if wanted:
            body = {key: value for key, value in body.items() if key in wanted}
        context = f"{request.url.origin()}/v1.0/$metadata#users/$entity"
        return web.json_response({"@odata.context": context, **body})

    async def catalog(self, request: web.Request) -> web.Response:
        """The organisation's apps, filtered by external id."""
        _require(request, _CATALOG_ROLES)
        external = _filtered(request)
        apps = [
            app
            for app in self.teamwork.apps.values()
            if external is None or app["externalId"] == external
        ]
        context = f"{request.url.origin()}/v1.0/$metadata#appCatalogs/teamsApps"
        return web.json_response({"@odata.context": context, "value": apps})

    async def install(self, request: web.Request) -> web.Response:
        """Install an app in the user's personal scope."""
        _require(request, _INSTALL_ROLES)
        body = request_json(request)
        bind = body.get("teamsApp@odata.bind") if isinstance(body, dict) else None
        match = _BIND.search(bind) if isinstance(bind, str) else None
        if match is None:
            raise GraphError(400, "BadRequest", "Bind the app with teamsApp@odata.bind.")
        user = self._user(request)
        if match.group(1) not in self.teamwork.apps:
            raise _not_found(match.group(1))
        if self.teamwork.block_installs:
            message = "User app installation is blocked by the tenant's app setup policy."
            raise GraphError(403, "Forbidden", message)
        self.teamwork.install(user, match.group(1))
        return web.Response(status=201)

    async def installed(self, request: web.Request) -> web.Response:
        """The user's installations, with their app when ``$expand=teamsApp``."""
        _require(request, _READ_INSTALL_ROLES)
        user = self._user(request)
        external = _filtered(request)
        expand = "teamsApp" in request.query.get("$expand", "")
        value = []
        for item in self.teamwork.installed_for(user.object_id):
            app = self.teamwork.apps[item.app_id]
            if external is not None and app["externalId"] != external:
                continue
            entry: dict[str, Any] = {
                "@odata.type": "#microsoft.graph.userScopeTeamsAppInstallation",
                "id": item.id,
            }
            value.append({**entry, "teamsApp": app} if expand else entry)
        context = f"{request.url.origin()}/v1.0/$metadata#users('{user.object_id}')/teamwork/installedApps"  # noqa: E501
        return web.json_response({"@odata.context": context, "value": value})

    async def chat(self, request: web.Request) -> web.Response:
        """The one-on-one chat of an installation."""
        _require(request, _READ_INSTALL_ROLES)
        user = self._user(request)
        wanted = request.match_info["installationId"]
        found = next(
            (i for i in self.teamwork.installed_for(user.object_id) if i.id == wanted), None
        )
        if found is None:
            raise _not_found(wanted)
        context = f"{request.url.origin()}/v1.0/$metadata#chats/$entity"
        return web.json_response(
            {
                "@odata.context": context,
                "id": found.chat_id,
                "topic": None,
                "chatType": "oneOnOne",
                "tenantId": None,
                "webUrl": f"https://teams.microsoft.com/l/chat/{found.chat_id}/0",
            }
        )

    async def control_state(self, request: web.Request) -> web.Response:
        """The catalog and installations, for tests."""
        return web.json_response(self.teamwork.to_json())

    async def control_change(self, request: web.Request) -> web.Response:
        """Block or allow user installs, or publish an app in the catalog."""
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            raise GraphError(400, "BadRequest", "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise GraphError(400, "BadRequest", "The body must be a JSON object")
        if isinstance(body.get("blockInstalls"), bool):
            self.teamwork.block_installs = body["blockInstalls"]
        published = body.get("publish")
        if isinstance(published, dict) and isinstance(published.get("externalId"), str):
            self.teamwork.publish(
                published["externalId"], str(published.get("displayName") or "Warden")
            )
        return web.json_response(self.teamwork.to_json())


def add_teamwork_routes(app: web.Application, directory: Directory, teamwork: Teamwork) -> None:
    """Register the user, app catalog, installation and chat routes, and their control."""
    routes = TeamworkRoutes(directory, teamwork)
    app.router.add_get("/v1.0/users/{userId}", routes.user, name="user_Get")
    app.router.add_get("/v1.0/appCatalogs/teamsApps", routes.catalog, name="appCatalogs_teamsApps")
    base = "/v1.0/users/{userId}/teamwork/installedApps"
    app.router.add_post(base, routes.install, name="user_installedApps_Create")
    app.router.add_get(base, routes.installed, name="user_installedApps_List")
    app.router.add_get(
        base + "/{installationId}/chat", routes.chat, name="user_installedApps_GetChat"
    )
    app.router.add_get("/_sandbox/teamwork", routes.control_state)
    app.router.add_post("/_sandbox/teamwork", routes.control_change)
