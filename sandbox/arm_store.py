"""The Sentinel state behind the ARM sandbox: workspaces, incidents, alerts, entities, comments.

Rules reproduced from the real service (sources in ``sandbox.arm_rules``): ARM names are
case-insensitive; PUT answers 201 on create and 200 on update; an ``etag`` in the body
that is not the stored one is refused with 409 ``Conflict``; every write bumps
``lastModifiedTimeUtc`` (strictly increasing) and the etag; closing needs a
classification; read-only properties sent back are ignored; ``additionalData`` counts
follow the stored alerts and comments.
"""

from __future__ import annotations

import copy
import datetime
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox.arm_directory import Directory
from sandbox.arm_odata import (
    Cursors,
    ODataError,
    OrderBy,
    parse_filter,
    parse_instant,
    parse_orderby,
    parse_top,
)
from sandbox.arm_records import ArmError
from sandbox.arm_rules import closing_error, not_found, stale_etag, workspace_errors
from sandbox.arm_schema import request_error, schema_error, strip_read_only
from sandbox.arm_seed import PORTAL_URL, Generated, Scope, new_etag, stamp

Now = Callable[[], datetime.datetime]
"""A clock returning aware UTC datetimes."""

INCIDENTS_MAX_TOP = 1000
"""The swagger's ``maximum`` for ``$top`` on Incidents_List."""

_SERVER_PROPERTIES = (
    "createdTimeUtc",
    "incidentNumber",
    "incidentUrl",
    "providerName",
    "providerIncidentId",
    "relatedAnalyticRuleIds",
    "additionalData",
)


def check_resource(resource: dict[str, Any]) -> None:
    """Raise ValueError unless an incident resource is valid and Sentinel would keep it."""
    problem = schema_error("Incident", resource) or closing_error(resource["properties"])
    if problem is not None:
        raise ValueError(problem)


@dataclass(frozen=True)
class ListQuery:
    """The OData options of a list request, as sent (strings or None)."""

    filter: str | None = None
    orderby: str | None = None
    top: str | None = None
    skip_token: str | None = None


@dataclass
class StoredIncident:
    """An incident resource with its alerts, entities and comments (by lower-case name)."""

    resource: dict[str, Any]
    alerts: list[dict[str, Any]] = field(default_factory=list)
    entities: list[dict[str, Any]] = field(default_factory=list)
    comments: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = 1

    @property
    def name(self) -> str:
        """The incident's name (its id in the URL)."""
        return str(self.resource["name"])

    def render(self) -> dict[str, Any]:
        """Return the resource as answered: a copy with live alert and comment counts."""
        answer = copy.deepcopy(self.resource)
        extra = answer["properties"].setdefault("additionalData", {})
        extra["alertsCount"] = max(len(self.alerts), int(extra.get("alertsCount", 0)))
        extra["commentsCount"] = len(self.comments)
        return answer


@dataclass
class Workspace:
    """A Sentinel workspace and its incidents (by lower-case name)."""

    scope: Scope
    incidents: dict[str, StoredIncident] = field(default_factory=dict)
    next_number: int = 1

    def incident(self, name: str) -> StoredIncident:
        """Return an incident; ArmError 404 if there is none by that name."""
        found = self.incidents.get(name.lower())
        if found is None:
            raise not_found(name)
        return found


class IncidentStore:
    """Every workspace the sandbox serves, and the operations of the incidents API."""

    def __init__(self, now: Now, directory: Directory, page_size: int = 50) -> None:
        """Create an empty store; ``page_size`` is the page length without ``$top``."""
        self.now = now
        self.directory = directory
        self.page_size = page_size
        self.cursors = Cursors()
        self._workspaces: dict[tuple[str, str, str], Workspace] = {}
        self._last = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)

    def tick(self, floor: str | None = None) -> str:
        """Return a server timestamp, later than every earlier one and than ``floor``."""
        moment = max(self.now(), self._last + datetime.timedelta(microseconds=1))
        if floor is not None:
            moment = max(moment, parse_instant(floor) + datetime.timedelta(microseconds=1))
        self._last = moment
        return stamp(moment)

    def add_workspace(self, scope: Scope) -> Workspace:
        """Serve a workspace (no-op when it exists) and return it."""
        return self._workspaces.setdefault(scope.key, Workspace(scope))

    def workspaces(self) -> list[Workspace]:
        """Return every served workspace."""
        return list(self._workspaces.values())

    def workspace(self, subscription: str, group: str, name: str) -> Workspace:
        """Return a served workspace; ArmError like ARM's for bad or unknown parts."""
        found = self._workspaces.get((subscription.lower(), group.lower(), name.lower()))
        if found is not None:
            return found
        known = [w.scope for w in self._workspaces.values()]
        raise workspace_errors(subscription, group, name, known)

    def clear(self) -> None:
        """Forget every incident (workspaces stay served) and every paging snapshot."""
        for workspace in self._workspaces.values():
            workspace.incidents.clear()
        self.cursors.clear()

    # Writing incidents.

    def insert(
        self, workspace: Workspace, generated: Generated, comments: Sequence[dict[str, Any]] = ()
    ) -> StoredIncident:
        """Store a ready-made incident (seed data) as is; returns it."""
        stored = StoredIncident(
            copy.deepcopy(generated.resource),
            copy.deepcopy(generated.alerts),
            copy.deepcopy(generated.entities),
            {str(c["name"]).lower(): copy.deepcopy(c) for c in comments},
        )
        workspace.incidents[stored.name.lower()] = stored
        number = stored.resource["properties"].get("incidentNumber", 0)
        workspace.next_number = max(workspace.next_number, int(number) + 1)
        return stored

    def put_incident(
        self, workspace: Workspace, name: str, body: object
    ) -> tuple[dict[str, Any], bool]:
        """Create or update an incident from a PUT body; returns (answer, created)."""
        if not isinstance(body, dict):
            raise ArmError(400, "BadRequest", "The request body must be a JSON object.")
        problem = request_error("Incident", body)
        if problem is not None:
            raise ArmError(400, "BadRequest", problem)
        writable = strip_read_only("Incident", body).get("properties")
        if not isinstance(writable, dict):
            raise ArmError(400, "BadRequest", "Incident properties are required.")
        problem = closing_error(writable)
        if problem is not None:
            raise ArmError(400, "BadRequest", problem)
        stored = workspace.incidents.get(name.lower())
        if stored is None:
            return self._create(workspace, name, writable).render(), True
        sent_etag = body.get("etag")
        if sent_etag is not None and sent_etag != stored.resource["etag"]:
            raise stale_etag(stored.name)
        self._replace(stored, writable)
        return stored.render(), False

    def _create(self, workspace: Workspace, name: str, writable: dict[str, Any]) -> StoredIncident:
        """Store a new incident with server-managed properties filled in."""
        number = workspace.next_number
        workspace.next_number += 1
        resource_id = workspace.scope.incident_id(name)
        created = self.tick()
        server = {
            "createdTimeUtc": created,
            "lastModifiedTimeUtc": created,
            "incidentNumber": number,
            "incidentUrl": PORTAL_URL + resource_id,
            "providerName": "Azure Sentinel",
            "providerIncidentId": str(number),
            "relatedAnalyticRuleIds": [],
            "additionalData": {
                "alertsCount": 0,
                "bookmarksCount": 0,
                "commentsCount": 0,
                "alertProductNames": [],
                "tactics": [],
            },
        }
        resource = {
            "id": resource_id,
            "name": name,
            "type": "Microsoft.SecurityInsights/incidents",
            "etag": new_etag(),
            "properties": {**self._normalised(writable), **server},
        }
        stored = StoredIncident(resource)
        workspace.incidents[name.lower()] = stored
        return stored

    def _replace(self, stored: StoredIncident, writable: dict[str, Any]) -> None:
        """Replace the writable properties, keep the server-managed ones, bump the version."""
        old = stored.resource["properties"]
        kept = {key: old[key] for key in _SERVER_PROPERTIES if key in old}
        stored.resource["properties"] = {**self._normalised(writable), **kept}
        self._bump(stored, old.get("lastModifiedTimeUtc"))

    def _bump(self, stored: StoredIncident, previous: str | None) -> None:
        """Give the incident a new etag and a later ``lastModifiedTimeUtc``."""
        stored.resource["properties"]["lastModifiedTimeUtc"] = self.tick(previous)
        stored.resource["etag"] = new_etag()
        stored.version += 1

    def _normalised(self, writable: dict[str, Any]) -> dict[str, Any]:
        """Fill in what Sentinel derives: the owner from its objectId, label types."""
        properties = copy.deepcopy(writable)
        owner = properties.get("owner")
        if isinstance(owner, dict) and isinstance(owner.get("objectId"), str):
            user = self.directory.find(owner["objectId"])
            if user is not None:
                properties["owner"] = {**user.owner_info(), **owner}
        properties.setdefault("labels", [])
        for label in properties["labels"]:
            label.setdefault("labelType", "User")
        return properties

    def portal_update(
        self, workspace: Workspace, name: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Change properties as a person in the portal would; bumps etag and timestamp."""
        stored = workspace.incident(name)
        merged = {**stored.resource["properties"], **copy.deepcopy(changes)}
        check_resource({**stored.resource, "properties": merged})
        previous = stored.resource["properties"].get("lastModifiedTimeUtc")
        stored.resource["properties"] = merged
        self._bump(stored, previous)
        return stored.render()

    def delete_incident(self, workspace: Workspace, name: str) -> bool:
        """Delete an incident; True if it existed."""
        return workspace.incidents.pop(name.lower(), None) is not None

    # Reading incidents.

    def list_incidents(
        self, workspace: Workspace, query: ListQuery
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Return one page of incidents and the next ``$skipToken`` (None on the last page)."""
        return self._list(
            workspace.incidents,
            query,
            OrderBy("createdTimeUtc", descending=True),
            INCIDENTS_MAX_TOP,
            lambda item: item.render(),
        )

    def _list(
        self,
        items: dict[str, Any],
        query: ListQuery,
        default_order: OrderBy,
        maximum: int | None,
        render: Callable[[Any], dict[str, Any]],
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Filter, order and page ``items`` (or resume a snapshot)."""
        try:
            size = parse_top(query.top, self.page_size, maximum)
            if query.skip_token:
                keys, token = self.cursors.resume(query.skip_token)
            else:
                clauses = parse_filter(query.filter)
                order = parse_orderby(query.orderby, default_order)
                rendered = [render(item) for item in items.values()]
                kept = [r for r in rendered if all(c.matches(r["properties"]) for c in clauses)]
                ordered = [str(r["name"]).lower() for r in order.sort(kept)]
                keys, token = self.cursors.page(ordered, size)
        except ODataError as exc:
            raise ArmError(400, "BadRequest", str(exc)) from None
        return [render(items[key]) for key in keys if key in items], token

    # Comments.

    def put_comment(
        self, stored: StoredIncident, name: str, body: object, author: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Create or update a comment from a PUT body; returns (answer, created)."""
        if not isinstance(body, dict):
            raise ArmError(400, "BadRequest", "The request body must be a JSON object.")
        problem = request_error("IncidentComment", body)
        if problem is not None:
            raise ArmError(400, "BadRequest", problem)
        message = strip_read_only("IncidentComment", body).get("properties", {}).get("message")
        if not isinstance(message, str):
            raise ArmError(400, "BadRequest", "IncidentComment properties/message is required.")
        moment = self.tick()
        existing = stored.comments.get(name.lower())
        if existing is not None:
            existing["properties"].update(message=message, lastModifiedTimeUtc=moment)
            existing["etag"] = str(uuid.uuid4())
            return copy.deepcopy(existing), False
        comment = {
            "id": f"{stored.resource['id']}/comments/{name}",
            "name": name,
            "type": "Microsoft.SecurityInsights/incidents/comments",
            "etag": str(uuid.uuid4()),
            "properties": {
                "message": message,
                "createdTimeUtc": moment,
                "lastModifiedTimeUtc": moment,
                "author": author,
            },
        }
        stored.comments[name.lower()] = comment
        return copy.deepcopy(comment), True

    def comment(self, stored: StoredIncident, name: str) -> dict[str, Any]:
        """Return a comment; ArmError 404 if the incident has none by that name."""
        found = stored.comments.get(name.lower())
        if found is None:
            raise not_found(name)
        return copy.deepcopy(found)

    def list_comments(
        self, stored: StoredIncident, query: ListQuery
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Return one page of an incident's comments (oldest first by default)."""
        return self._list(
            stored.comments,
            query,
            OrderBy("createdTimeUtc", descending=False),
            None,
            copy.deepcopy,
        )
