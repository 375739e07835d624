"""Handlers of the Sentinel incidents API (api-version 2025-12-01) in the ARM sandbox.

Operations (swagger operation ids): Incidents_List / _Get / _CreateOrUpdate / _Delete,
Incidents_ListAlerts and Incidents_ListEntities (both POST), IncidentComments_List / _Get /
_CreateOrUpdate / _Delete. Lists page with ``nextLink``, which repeats the request's
query with an opaque ``$skipToken``. DELETE answers 200 when something was deleted and
204 when there was nothing to delete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.arm_deployments_routes import deployments, is_deployments_path
from sandbox.arm_http import CLAIMS_KEY, MATCH_KEY, ArmMatch, request_json
from sandbox.arm_policy_routes import is_policy_path, policy_insights
from sandbox.arm_records import ArmError
from sandbox.arm_schema import API_VERSION
from sandbox.arm_seed import entities_metadata
from sandbox.arm_store import ListQuery, StoredIncident, Workspace

if TYPE_CHECKING:
    from sandbox.arm import ArmSandbox


def _query(request: web.Request) -> ListQuery:
    """Return the OData options of a list request (parameter names are case-insensitive)."""
    lowered = {key.lower(): value for key, value in request.query.items()}
    return ListQuery(
        filter=lowered.get("$filter"),
        orderby=lowered.get("$orderby"),
        top=lowered.get("$top"),
        skip_token=lowered.get("$skiptoken"),
    )


def _next_link(request: web.Request, token: str) -> str:
    """Return the nextLink: this request's URL and query with ``$skipToken`` replaced."""
    params = [(k, v) for k, v in request.query.items() if k.lower() != "$skiptoken"]
    params.append(("$skipToken", token))
    return str(request.url.origin().with_path(request.path).with_query(params))


def _page(request: web.Request, items: list[dict[str, Any]], token: str | None) -> web.Response:
    """Answer a list page ``{"value": [...], "nextLink"?}``."""
    body: dict[str, Any] = {"value": items}
    if token is not None:
        body["nextLink"] = _next_link(request, token)
    return web.json_response(body)


class ArmRoutes:
    """The Sentinel handlers, bound to one sandbox; one route serves every ARM path."""

    def __init__(self, sandbox: ArmSandbox) -> None:
        """Bind the handlers to ``sandbox``."""
        self.sandbox = sandbox
        self.store = sandbox.store

    async def dispatch(self, request: web.Request) -> web.Response:
        """Run the handler of the matched operation; ARM's 404/405 otherwise."""
        if is_policy_path(request.path):
            return await policy_insights(self.sandbox.policy, request)
        if is_deployments_path(request.path):
            return await deployments(self.sandbox.deployments, request)
        found = request[MATCH_KEY]
        if not found.allowed:
            message = (
                "The resource type could not be found in the namespace "
                f"'Microsoft.SecurityInsights' for api version '{API_VERSION}'."
            )
            raise ArmError(404, "InvalidResourceType", message)
        handler = getattr(self, found.operation.lower(), None)
        if handler is None:
            message = f"The requested resource does not support http method '{request.method}'."
            raise ArmError(405, "MethodNotAllowed", message, {"Allow": ", ".join(found.allowed)})
        response: web.Response = await handler(request, found)
        return response

    def _workspace(self, found: ArmMatch) -> Workspace:
        """Return the addressed workspace (ARM's 400/404 if it is not served)."""
        return self.store.workspace(found.subscription, found.resource_group, found.workspace)

    def _incident(self, found: ArmMatch) -> StoredIncident:
        """Return the addressed incident (404 if it does not exist)."""
        return self._workspace(found).incident(found.incident or "")

    async def incidents_list(self, request: web.Request, found: ArmMatch) -> web.Response:
        """Incidents_List: one page of IncidentList."""
        items, token = self.store.list_incidents(self._workspace(found), _query(request))
        return _page(request, items, token)

    async def incidents_get(self, request: web.Request, found: ArmMatch) -> web.Response:
        """Incidents_Get: 200 Incident."""
        return web.json_response(self._incident(found).render())

    async def incidents_createorupdate(self, request: web.Request, found: ArmMatch) -> web.Response:
        """Incidents_CreateOrUpdate: 201 on create, 200 on update, 409 on a stale etag."""
        body = request_json(request)
        answer, created = self.store.put_incident(
            self._workspace(found), found.incident or "", body
        )
        return web.json_response(answer, status=201 if created else 200)

    async def incidents_delete(self, request: web.Request, found: ArmMatch) -> web.Response:
        """Incidents_Delete: 200 when deleted, 204 when there was no such incident."""
        deleted = self.store.delete_incident(self._workspace(found), found.incident or "")
        return web.Response(status=200 if deleted else 204)

    async def incidents_listalerts(self, request: web.Request, found: ArmMatch) -> web.Response:
        """Incidents_ListAlerts (POST): 200 IncidentAlertList."""
        return web.json_response({"value": self._incident(found).alerts})

    async def incidents_listentities(self, request: web.Request, found: ArmMatch) -> web.Response:
        """Incidents_ListEntities (POST): 200 IncidentEntitiesResponse."""
        entities = self._incident(found).entities
        return web.json_response({"entities": entities, "metaData": entities_metadata(entities)})

    async def incidentcomments_list(self, request: web.Request, found: ArmMatch) -> web.Response:
        """IncidentComments_List: one page of IncidentCommentList."""
        items, token = self.store.list_comments(self._incident(found), _query(request))
        return _page(request, items, token)

    async def incidentcomments_get(self, request: web.Request, found: ArmMatch) -> web.Response:
        """IncidentComments_Get: 200 IncidentComment."""
        return web.json_response(self.store.comment(self._incident(found), found.child or ""))

    async def incidentcomments_createorupdate(
        self, request: web.Request, found: ArmMatch
    ) -> web.Response:
        """IncidentComments_CreateOrUpdate: 201 on create, 200 on update."""
        author = self.sandbox.author_for(request[CLAIMS_KEY])
        answer, created = self.store.put_comment(
            self._incident(found), found.child or "", request_json(request), author
        )
        return web.json_response(answer, status=201 if created else 200)

    async def incidentcomments_delete(self, request: web.Request, found: ArmMatch) -> web.Response:
        """IncidentComments_Delete: 200 when deleted, 204 when there was no such comment."""
        stored = self._incident(found)
        deleted = stored.comments.pop((found.child or "").lower(), None) is not None
        return web.Response(status=200 if deleted else 204)


def add_arm_routes(app: web.Application, sandbox: ArmSandbox) -> None:
    """Register the one catch-all route that serves every ``/subscriptions/...`` path."""
    routes = ArmRoutes(sandbox)
    app.router.add_route("*", "/subscriptions/{tail:.*}", routes.dispatch, name="Arm")
