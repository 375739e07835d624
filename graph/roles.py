"""A person's Warden roles, asked of Microsoft Graph and kept briefly.

Two questions per person, each answer cached ``ttl`` seconds:

* which mapped groups they are a transitive member of: ``POST /users/{id}/checkMemberGroups``
  (at most 20 groups per call);
* which app roles of Warden's service principal they are assigned:
  ``GET /users/{id}/appRoleAssignments?$filter=resourceId eq {sp}`` — Graph answers the
  person's own assignments and those of the groups they are a direct member of. An app role
  is matched by value (``Warden.Reviewer``, read from ``GET /servicePrincipals/{sp}``'s
  ``appRoles``, cached alike) or by id.

When Graph cannot answer, the check fails closed (``ResponderCheckUnavailable``). Group
display names, for ``whoami`` and the audit, come from ``GET /groups/{id}`` and are kept an hour.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import httpx
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.groups.item.group_item_request_builder import GroupItemRequestBuilder
from msgraph.generated.service_principals.item.service_principal_item_request_builder import (
    ServicePrincipalItemRequestBuilder,
)
from msgraph.generated.users.item.app_role_assignments.app_role_assignments_request_builder import (
    AppRoleAssignmentsRequestBuilder,
)
from msgraph.generated.users.item.check_member_groups.check_member_groups_post_request_body import (
    CheckMemberGroupsPostRequestBody,
)
from msgraph.graph_service_client import GraphServiceClient

from core.errors import DeliveryError, ResponderCheckUnavailable
from core.roles import HeldAppRole, RoleAnswer, RoleMap, grants

log = logging.getLogger(__name__)

GRAPH_BATCH = 20
"""Graph checks at most this many groups per request."""

NAMES_TTL = 3600.0
"""How long a group's display name is kept (names change rarely; ids are what count)."""

T = TypeVar("T")


class NotInDirectory(Exception):
    """Graph does not know the user (404): they hold no role."""


class RoleResolver:
    """``roles(object_id)``: what the directory grants a person (cached ``ttl`` seconds)."""

    def __init__(
        self,
        graph: GraphServiceClient,
        role_map: RoleMap,
        *,
        service_principal_id: str = "",
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._graph = graph
        self._map = role_map
        self._sp = service_principal_id.lower()
        self._ttl = ttl
        self._clock = clock
        self._http = http
        self._cache: dict[str, tuple[RoleAnswer, float]] = {}
        self._names: dict[str, tuple[str, float]] = {}
        self._app_roles: tuple[dict[str, str], float] | None = None

    @property
    def role_map(self) -> RoleMap:
        """The mapping of roles to groups and app roles the answers follow."""
        return self._map

    async def roles(self, object_id: str) -> RoleAnswer:
        """The person's roles with their sources; ``ResponderCheckUnavailable`` when Graph
        cannot tell now (fail closed)."""
        key = object_id.lower()
        known = self._cache.get(key)
        if known is not None and known[1] > self._clock():
            return known[0]
        try:
            member_of = await self._member_groups(key)
            held = await self._held_app_roles(key)
        except NotInDirectory:
            member_of, held = set(), []
        answer = grants(self._map, member_of, held, await self.group_names(sorted(member_of)))
        self._cache[key] = (answer, self._clock() + self._ttl)
        if len(self._cache) > 10_000:  # bound memory: drop the entries that expire first
            for stale in sorted(self._cache, key=lambda k: self._cache[k][1])[:1_000]:
                del self._cache[stale]
        return answer

    async def group_names(self, group_ids: Sequence[str]) -> dict[str, str]:
        """Display names of ``group_ids`` (those Graph could name; the others are left out)."""
        names: dict[str, str] = {}
        for group_id in group_ids:
            known = self._names.get(group_id)
            if known is None or known[1] <= self._clock():
                query = GroupItemRequestBuilder.GroupItemRequestBuilderGetQueryParameters(
                    select=["id", "displayName"]
                )
                request = self._graph.groups.by_group_id(group_id)
                try:
                    group = await request.get(RequestConfiguration(query_parameters=query))
                except (APIError, DeliveryError):
                    continue  # a name is a courtesy: the id stands in for it
                known = ((group.display_name or "") if group else "", self._clock() + NAMES_TTL)
                self._names[group_id] = known
            if known[0]:
                names[group_id] = known[0]
        return names

    async def aclose(self) -> None:
        """Close the HTTP client given as ``http`` (Graph's)."""
        if self._http is not None:
            await self._http.aclose()

    async def _member_groups(self, object_id: str) -> set[str]:
        """The mapped groups the person is a transitive member of."""
        groups, found = self._map.all_groups, set()
        user = self._graph.users.by_user_id(object_id)
        for start in range(0, len(groups), GRAPH_BATCH):
            body = CheckMemberGroupsPostRequestBody(group_ids=groups[start : start + GRAPH_BATCH])
            answer = await _asked(user.check_member_groups.post(body))
            found |= {g.lower() for g in (answer.value if answer and answer.value else [])}
        return found

    async def _held_app_roles(self, object_id: str) -> list[HeldAppRole]:
        """The app roles of Warden's service principal the person holds, directly or via a
        group they are a direct member of."""
        if not self._sp or not any(self._map.app_roles.values()):
            return []
        values = await self._app_role_values()
        params = AppRoleAssignmentsRequestBuilder.AppRoleAssignmentsRequestBuilderGetQueryParameters
        query = params(filter=f"resourceId eq {self._sp}")
        request = self._graph.users.by_user_id(object_id).app_role_assignments
        page = await _asked(request.get(RequestConfiguration(query_parameters=query)))
        held: list[HeldAppRole] = []
        while page is not None:
            for item in page.value or []:
                if str(item.resource_id or "").lower() != self._sp:
                    continue
                role_id = str(item.app_role_id or "").lower()
                via = item.principal_display_name or "" if item.principal_type == "Group" else ""
                held.append(HeldAppRole(values.get(role_id, role_id), role_id, via))
            if not page.odata_next_link:
                break
            page = await _asked(request.with_url(page.odata_next_link).get())
        return held

    async def _app_role_values(self) -> dict[str, str]:
        """App role value by id, of Warden's service principal (cached ``ttl`` seconds)."""
        if self._app_roles is not None and self._app_roles[1] > self._clock():
            return self._app_roles[0]
        builder = ServicePrincipalItemRequestBuilder
        query = builder.ServicePrincipalItemRequestBuilderGetQueryParameters(
            select=["id", "appRoles"]
        )
        request = self._graph.service_principals.by_service_principal_id(self._sp)
        principal = await _asked(request.get(RequestConfiguration(query_parameters=query)))
        roles = principal.app_roles if principal and principal.app_roles else []
        values = {str(r.id).lower(): r.value for r in roles if r.id and r.value}
        self._app_roles = (values, self._clock() + self._ttl)
        return values


async def _asked(call: Awaitable[T]) -> T:
    """Graph's answer, ``NotInDirectory`` for a 404, else ``ResponderCheckUnavailable``."""
    try:
        return await call
    except APIError as exc:
        if exc.response_status_code == 404:
            raise NotInDirectory from None
        log.warning("role check failed: Graph answered %s", exc.response_status_code)
        raise ResponderCheckUnavailable(str(exc.response_status_code)) from None
    except DeliveryError as exc:
        log.warning("role check failed: %s", exc)
        raise ResponderCheckUnavailable(str(exc)) from None
