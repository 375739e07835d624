"""Async client of Microsoft Sentinel's incidents API (ARM, api-version 2025-12-01).

Calls go through the injected ``httpx.AsyncClient`` (``connectors.http.resilient_client``)
with explicit timeouts and an ARM bearer token from the injected azure-identity credential,
as for every ARM client (``connectors.arm_client``); answers become Warden's models
(``mapping``), failures typed errors (``errors``). An update
is one PUT of every writable property carrying the etag of the version it was built from:
Sentinel refuses it (409, ``IncidentConflict``) if the incident changed since.
"""

from __future__ import annotations

import copy
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from connectors.arm_client import ARM_ENDPOINT as ARM_ENDPOINT
from connectors.arm_client import ArmClient
from connectors.arm_token import ARM_SCOPE as ARM_SCOPE  # re-exported: callers import it here
from connectors.sentinel.errors import ERRORS, SentinelError
from connectors.sentinel.mapping import (
    Alert,
    Comment,
    Entity,
    IncidentChanges,
    alert_from_resource,
    comment_from_resource,
    entity_from_resource,
    incident_from_resource,
    incident_put_body,
)
from connectors.sentinel.query import list_query, status_query
from core.errors import InvalidPayload, Outcome
from core.models import Incident, IncidentStatus

log = logging.getLogger(__name__)

API_VERSION = "2025-12-01"
"""The Sentinel incidents api-version this client speaks (the swagger in ``contracts/``)."""

_T = TypeVar("_T")
_GUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
_RESOURCE_GROUP = re.compile(r"^[-\w._()]{1,90}$")
_WORKSPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{1,88}[A-Za-z0-9]$")
_ID_PREFIX = ("subscriptions", "resourcegroups", "providers", "workspaces")


@dataclass(frozen=True)
class Workspace:
    """A Log Analytics workspace with Sentinel: where incidents live (names as in ARM)."""

    subscription_id: str
    resource_group: str
    workspace_name: str

    def __post_init__(self) -> None:
        """Refuse parts the swagger's path parameters refuse (and so any path injection)."""
        if not _GUID.match(self.subscription_id):
            raise ValueError(f"subscription id {self.subscription_id!r} is not a GUID")
        if not _RESOURCE_GROUP.match(self.resource_group) or self.resource_group.endswith("."):
            raise ValueError(f"resource group name {self.resource_group!r} is not valid")
        if not _WORKSPACE.match(self.workspace_name):
            raise ValueError(f"workspace name {self.workspace_name!r} is not valid")

    @classmethod
    def parse(cls, text: str) -> Workspace:
        """Read ``subscription/resourceGroup/workspace`` or the workspace's ARM resource id."""
        parts = text.strip().strip("/").split("/")
        if len(parts) == 3:
            return cls(*parts)
        lowered = [part.lower() for part in parts]
        provider = lowered[5] if len(parts) == 8 else ""
        if tuple(lowered[0:7:2]) == _ID_PREFIX and provider == "microsoft.operationalinsights":
            return cls(parts[1], parts[3], parts[7])
        raise ValueError(f"{text!r} is not 'subscription/resourceGroup/workspace' or an ARM id")

    @property
    def base_path(self) -> str:
        """The ARM path of ``.../providers/Microsoft.SecurityInsights`` in this workspace."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.OperationalInsights/workspaces/{self.workspace_name}"
            "/providers/Microsoft.SecurityInsights"
        )

    def __str__(self) -> str:
        """The ``subscription/resourceGroup/workspace`` form ``parse`` reads."""
        return f"{self.subscription_id}/{self.resource_group}/{self.workspace_name}"


@dataclass(frozen=True)
class IncidentSnapshot:
    """An incident as Sentinel answered it: the model and the raw resource (a private copy).

    A PUT replaces every writable property; only the raw resource carries all of them
    (activity times, the classification's reason and comment, the owner type) back.
    """

    incident: Incident
    resource: dict[str, Any]


@dataclass(frozen=True)
class IncidentPage:
    """One page of Incidents_List: its incidents and the ``nextLink`` (None on the last)."""

    incidents: list[Incident]
    next_link: str | None


def snapshot_from_resource(resource: Any) -> IncidentSnapshot:
    """The snapshot of an ARM incident resource; ``InvalidPayload`` names a bad field."""
    return IncidentSnapshot(incident_from_resource(resource), copy.deepcopy(resource))


def _segment(value: str, what: str) -> str:
    """One path segment, percent-encoded; ``ValueError`` for an empty or dot name."""
    if not value or value.strip() in (".", ".."):
        raise ValueError(f"{what} must be a non-empty name")
    return quote(value, safe="")


class SentinelClient(ArmClient[SentinelError]):
    """Reads and changes Sentinel incidents, comments, alerts and entities.

    The caller owns (and closes) ``http`` and ``credential``. The ARM token is kept until
    5 minutes before it expires.
    """

    api_version = API_VERSION
    errors = ERRORS

    def list_incidents(
        self,
        workspace: Workspace,
        *,
        modified_since: datetime | None = None,
        status_not: IncidentStatus | str | None = None,
        order: Literal["asc", "desc"] = "asc",
        top: int = 200,
    ) -> AsyncIterator[Incident]:
        """Every incident matching the filters, ordered by ``lastModifiedTimeUtc``.

        ``modified_since`` keeps those modified at or after it (``ge``; Sentinel's 7 fraction
        digits cut to Python's 6 make a boundary incident come again, never go missing).
        ``status_not`` drops one status. Pages of ``top`` (1..1000) are fetched as the caller
        iterates, along ``nextLink``; an unreadable incident is logged and skipped.
        """
        query = {**self._api, **list_query(modified_since, status_not, order, top)}
        return self._walk(self._incidents_url(workspace), query, incident_from_resource)

    async def incident_page(
        self,
        workspace: Workspace,
        *,
        statuses: Sequence[IncidentStatus | str],
        top: int = 200,
        link: str | None = None,
    ) -> IncidentPage:
        """One page of the incidents in ``statuses``, oldest created first (a stable order).

        Without ``link`` the first page of ``top`` (1..1000); with it, the page that link
        (a ``next_link`` an earlier page gave, kept across restarts) points to, which must be
        on this client's ARM host: the token goes along. An unreadable incident is logged
        and skipped.
        """
        url = self._incidents_url(workspace)
        query: dict[str, str] | None = {**self._api, **status_query(statuses, top)}
        followed = self._follow(link, set()) if link else None
        if followed is not None:
            url, query = followed, None
        answer = await self._call("GET", url, params=query)
        incidents = _mapped_all(incident_from_resource, _field(answer, "value"))
        following = answer.get("nextLink")
        return IncidentPage(incidents, following if isinstance(following, str) else None)

    async def get_incident(self, workspace: Workspace, incident_name: str) -> Incident:
        """The incident's current version; ``IncidentNotFound`` if there is none."""
        return (await self.get_incident_snapshot(workspace, incident_name)).incident

    async def get_incident_snapshot(
        self, workspace: Workspace, incident_name: str
    ) -> IncidentSnapshot:
        """The incident's current version with its raw resource, to update it faithfully."""
        url = self._incident_url(workspace, incident_name)
        answer = await self._call("GET", url, params=self._api)
        return _read(snapshot_from_resource, answer)

    async def update_incident(
        self,
        workspace: Workspace,
        current: IncidentSnapshot | Incident,
        changes: IncidentChanges,
    ) -> Incident:
        """Apply ``changes`` to ``current`` with one PUT, conditional on ``current``'s etag.

        Pass the snapshot of ``get_incident_snapshot`` to carry every property back; an
        ``Incident`` loses what it does not keep (see ``mapping.incident_put_body``).
        Raises ``InvalidIncidentChange`` before sending what Sentinel would refuse, and
        ``IncidentConflict`` when the incident changed since ``current`` was read.
        """
        if isinstance(current, IncidentSnapshot):
            name, body = current.incident.name, incident_put_body(current.resource, changes)
        else:
            name, body = current.name, incident_put_body(current, changes)
        url = self._incident_url(workspace, name)
        answer = await self._call("PUT", url, params=self._api, body=body)
        return _read(incident_from_resource, answer)

    async def list_comments(self, workspace: Workspace, incident_name: str) -> list[Comment]:
        """Every comment of the incident, in the service's order (oldest first), all pages."""
        url = self._incident_url(workspace, incident_name) + "/comments"
        return [comment async for comment in self._walk(url, self._api, comment_from_resource)]

    async def add_comment(
        self,
        workspace: Workspace,
        incident_name: str,
        message: str,
        *,
        comment_id: str | None = None,
    ) -> Comment:
        """Add a comment under ``comment_id`` (a new GUID unless given) and return it.

        The PUT is idempotent: sent again with the same id (by the retry layer, or by an
        outbox job that runs twice) it leaves one comment.
        """
        if not message.strip():
            raise ValueError("a comment needs a message")
        name = _segment(comment_id or str(uuid.uuid4()), "comment id")
        url = f"{self._incident_url(workspace, incident_name)}/comments/{name}"
        body = {"properties": {"message": message}}
        answer = await self._call("PUT", url, params=self._api, body=body, idempotent=True)
        return _read(comment_from_resource, answer)

    async def list_alerts(self, workspace: Workspace, incident_name: str) -> list[Alert]:
        """The incident's alerts (Incidents_ListAlerts: a POST that only reads, so retryable)."""
        url = self._incident_url(workspace, incident_name) + "/alerts"
        answer = await self._call("POST", url, params=self._api, idempotent=True)
        return _mapped_all(alert_from_resource, _field(answer, "value"))

    async def list_entities(self, workspace: Workspace, incident_name: str) -> list[Entity]:
        """The incident's entities (Incidents_ListEntities, a read too): kind, friendly name."""
        url = self._incident_url(workspace, incident_name) + "/entities"
        answer = await self._call("POST", url, params=self._api, idempotent=True)
        return _mapped_all(entity_from_resource, _field(answer, "entities"))

    def _incidents_url(self, workspace: Workspace) -> str:
        """The absolute URL of the workspace's incidents collection."""
        return f"{self._base_url}{workspace.base_path}/incidents"

    def _incident_url(self, workspace: Workspace, incident_name: str) -> str:
        """The absolute URL of one incident."""
        return f"{self._incidents_url(workspace)}/{_segment(incident_name, 'incident name')}"

    async def _walk(
        self, url: str, params: dict[str, str], mapper: Callable[[Any], _T]
    ) -> AsyncIterator[_T]:
        """The mapped items of a list operation, page after page along ``nextLink``."""
        async for page in self._pages("GET", url, params):
            for item in _mapped_all(mapper, page):
                yield item


def _field(answer: Any, name: str) -> list[Any]:
    """The array ``name`` of a JSON object answer; ``SentinelUnavailable`` if it is missing."""
    items = answer.get(name) if isinstance(answer, dict) else None
    if not isinstance(items, list):
        raise ERRORS.invalid_answer(f"the answer has no {name!r} array")
    return items


def _read(mapper: Callable[[Any], _T], item: Any) -> _T:
    """Map an answer; one Warden cannot read is ``SentinelUnavailable`` (FAIL: retry won't do)."""
    try:
        return mapper(item)
    except InvalidPayload as exc:
        raise ERRORS.invalid_answer(f"unreadable answer: {exc}", outcome=Outcome.FAIL) from exc


def _mapped_all(mapper: Callable[[Any], _T], items: list[Any]) -> list[_T]:
    """Map list items; one Warden cannot read is logged (id and field only) and skipped."""
    mapped = []
    for item in items:
        try:
            mapped.append(mapper(item))
        except InvalidPayload as exc:
            where = item.get("id") if isinstance(item, dict) else None
            log.warning("skipping an unreadable Sentinel item %s (field %s)", where, exc.field)
    return mapped
