"""ARM deployments of resource groups (``Microsoft.Resources/deployments``, api-version 2024-03-01).

The ARM sandbox keeps the deployments of each resource group and answers as ARM does:

* ``Deployments_ListByResourceGroup``: ``GET {rg}/providers/Microsoft.Resources/deployments``,
  newest first, ``$top`` (default ``page_size``) and a ``nextLink`` that repeats the request
  with an opaque ``$skipToken``; ``$filter=provisioningState eq '<state>'`` as the service
  allows (any other filter is refused 400 ``InvalidFilter``);
* ``Deployments_Get``: ``GET .../deployments/{name}`` (404 ``DeploymentNotFound``);
* ``DeploymentOperations_List``: ``GET .../deployments/{name}/operations`` with ``$top``,
  each operation's ``properties.targetResource`` naming the resource it touched.

Each deployment is ``DeploymentExtended``: ``{id, name, type, tags, properties:
{provisioningState, timestamp, duration, correlationId, mode, templateHash,
outputResources: [{id}], providers, dependencies, error?}}``. Seeded deployments sit in the
resource groups of the seeded Resource Graph resources and touch those resources; seeding
against incidents also puts a deployment shortly before an incident's first alert, on a
resource that incident names as an ``AzureResource`` entity.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import random
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

DEPLOYMENTS_API_VERSION = "2024-03-01"
"""The Microsoft.Resources api-version the sandbox serves for deployments."""

_NAMES = (
    "webapp-release",
    "infra-baseline",
    "network-hardening",
    "sql-scale-out",
    "keyvault-rotation",
    "storage-lifecycle",
    "vm-patch-window",
    "appgw-waf-rules",
)
_STATES = ("Succeeded",) * 8 + ("Failed",)
_GROUP = re.compile(r"^/subscriptions/([^/]+)/resourcegroups/([^/]+)", re.IGNORECASE)


class DeploymentError(Exception):
    """A request ARM refuses: status, code and message in ARM's CloudError envelope."""

    def __init__(self, status: int, code: str, message: str) -> None:
        """Describe the refusal."""
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def stamp(moment: datetime.datetime) -> str:
    """ARM's timestamp spelling (seven fractional digits, ``Z``)."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def group_of(resource_id: str) -> str:
    """The resource group id (``/subscriptions/{s}/resourceGroups/{rg}``) of a resource."""
    found = _GROUP.match(resource_id)
    if found is None:
        raise ValueError(f"not in a resource group: {resource_id!r}")
    return f"/subscriptions/{found[1]}/resourceGroups/{found[2]}"


@dataclass
class StoredDeployment:
    """One deployment and the resources its operations touched."""

    resource: dict[str, Any]
    targets: list[str] = field(default_factory=list)

    @property
    def when(self) -> str:
        """Its timestamp (sorts in time order)."""
        return str(self.resource["properties"]["timestamp"])

    def operations(self) -> list[dict[str, Any]]:
        """Its operations as ``DeploymentOperations_List`` answers them, one per target."""
        props = self.resource["properties"]
        made = []
        for number, target in enumerate(self.targets):
            op_id = hashlib.sha256(f"{self.resource['id']}|{number}".encode()).hexdigest()[:16]
            made.append(
                {
                    "id": f"{self.resource['id']}/operations/{op_id.upper()}",
                    "operationId": op_id.upper(),
                    "properties": {
                        "provisioningOperation": "Create",
                        "provisioningState": props["provisioningState"],
                        "timestamp": props["timestamp"],
                        "duration": props["duration"],
                        "trackingId": str(uuid.uuid5(uuid.NAMESPACE_URL, target)),
                        "statusCode": "OK"
                        if props["provisioningState"] == "Succeeded"
                        else "Conflict",
                        "targetResource": {
                            "id": target,
                            "resourceName": target.rsplit("/", 1)[-1],
                            "resourceType": _type_of(target),
                        },
                    },
                }
            )
        return made


def _type_of(resource_id: str) -> str:
    """``Namespace/type[/child]`` of an ARM resource id."""
    parts = resource_id.split("/providers/", 1)[-1].split("/")
    return "/".join([parts[0], *parts[1::2][: max(1, (len(parts) - 1) // 2)]])


def deployment_resource(
    group: str,
    name: str,
    when: datetime.datetime,
    targets: Iterable[str],
    *,
    state: str = "Succeeded",
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """A ``DeploymentExtended`` of ``group`` named ``name`` that ended at ``when``."""
    pick = rng or random.Random()  # noqa: S311 - sample data
    touched = list(targets)
    seconds = pick.randint(20, 600)
    properties: dict[str, Any] = {
        "templateHash": str(pick.getrandbits(63)),
        "parameters": {},
        "mode": "Incremental",
        "provisioningState": state,
        "timestamp": stamp(when),
        "duration": f"PT{seconds // 60}M{seconds % 60}.{pick.randint(0, 999):03d}S",
        "correlationId": str(uuid.UUID(int=pick.getrandbits(128))),
        "providers": sorted({_type_of(t).split("/")[0] for t in touched}),
        "dependencies": [],
        "outputResources": [{"id": t} for t in touched] if state == "Succeeded" else [],
    }
    if state == "Failed":
        properties["error"] = {
            "code": "DeploymentFailed",
            "message": "At least one resource deployment operation failed.",
        }
    return {
        "id": f"{group}/providers/Microsoft.Resources/deployments/{name}",
        "name": name,
        "type": "Microsoft.Resources/deployments",
        "tags": {},
        "properties": properties,
    }


def _token(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "f": fingerprint}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_token(token: str, fingerprint: str) -> int:
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset, made_for = int(value["o"]), value["f"]
    except (ValueError, KeyError, TypeError):
        raise DeploymentError(400, "InvalidSkipToken", "The skip token is not valid.") from None
    if made_for != fingerprint or offset < 0:
        raise DeploymentError(400, "InvalidSkipToken", "The skip token is for another list.")
    return offset


_FILTER = re.compile(r"^\s*provisioningState\s+eq\s+'(?P<state>\w+)'\s*$", re.IGNORECASE)


class Deployments:
    """The deployments of every resource group the sandbox serves, by group (lower case)."""

    def __init__(self, clock: Callable[[], datetime.datetime], page_size: int = 20) -> None:
        """No deployments; ``page_size`` is a list page without ``$top``."""
        self.clock = clock
        self.page_size = page_size
        self.groups: dict[str, dict[str, StoredDeployment]] = {}

    def put(
        self, resource: dict[str, Any], targets: Iterable[str] | None = None
    ) -> StoredDeployment:
        """Add or replace one deployment; its targets default to its output resources."""
        group = group_of(resource["id"]).lower()
        touched = (
            list(targets)
            if targets is not None
            else [r["id"] for r in resource["properties"].get("outputResources", [])]
        )
        stored = StoredDeployment(resource, touched)
        self.groups.setdefault(group, {})[resource["name"].lower()] = stored
        return stored

    def clear(self) -> None:
        """Forget every deployment."""
        self.groups.clear()

    def get(self, group: str, name: str) -> StoredDeployment:
        """One deployment; 404 ``DeploymentNotFound`` when the group has none of that name."""
        found = self.groups.get(group.lower(), {}).get(name.lower())
        if found is None:
            message = f"Deployment '{name}' could not be found."
            raise DeploymentError(404, "DeploymentNotFound", message)
        return found

    def list(
        self, group: str, top: str | None, skip_token: str | None, filter_text: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the group's deployments, newest first, and the next page's token."""
        size = self.page_size
        if top is not None:
            if not top.isdigit() or not 1 <= int(top) <= 1000:
                raise DeploymentError(400, "InvalidTop", "$top must be from 1 to 1000.")
            size = int(top)
        state = None
        if filter_text:
            matched = _FILTER.match(filter_text)
            if matched is None:
                message = "The filter is not supported: use provisioningState eq '<state>'."
                raise DeploymentError(400, "InvalidFilter", message)
            state = matched["state"].lower()
        rows = sorted(self.groups.get(group.lower(), {}).values(), key=lambda d: d.when)
        rows.reverse()
        if state is not None:
            rows = [
                d for d in rows if d.resource["properties"]["provisioningState"].lower() == state
            ]
        fingerprint = hashlib.sha256(f"{group.lower()}|{state}".encode()).hexdigest()[:12]
        offset = _read_token(skip_token, fingerprint) if skip_token else 0
        page = rows[offset : offset + size]
        more = offset + len(page) < len(rows)
        return [d.resource for d in page], _token(offset + size, fingerprint) if more else None

    def seed(
        self,
        resources: Iterable[dict[str, Any]],
        *,
        per_group: int = 6,
        days: int = 14,
        random_seed: int | None = 0,
    ) -> int:
        """Add ``per_group`` deployments to the group of every resource given, each touching
        one to three of that group's resources, over the last ``days`` days; how many."""
        rng = random.Random(random_seed)  # noqa: S311 - sample data
        by_group: dict[str, list[str]] = {}
        for row in resources:
            by_group.setdefault(group_of(row["id"]), []).append(row["id"])
        now, added = self.clock(), 0
        for group, ids in sorted(by_group.items()):
            for number in range(per_group):
                when = now - datetime.timedelta(minutes=rng.randint(10, days * 24 * 60))
                name = f"{rng.choice(_NAMES)}-{when:%Y%m%d-%H%M}-{number}"
                targets = rng.sample(sorted(ids), k=min(len(ids), rng.randint(1, 3)))
                self.put(
                    deployment_resource(
                        group, name, when, targets, state=rng.choice(_STATES), rng=rng
                    ),
                    targets,
                )
                added += 1
        return added

    def deploy_before(
        self, resource_id: str, first_alert: datetime.datetime, minutes: float, name: str
    ) -> StoredDeployment:
        """A successful deployment of ``resource_id`` ``minutes`` before ``first_alert``."""
        when = first_alert - datetime.timedelta(minutes=minutes)
        group = group_of(resource_id)
        rng = random.Random(f"{resource_id}|{name}")  # noqa: S311 - sample data
        return self.put(deployment_resource(group, name, when, [resource_id], rng=rng))


def azure_resource_entity(resource_id: str, rng: random.Random) -> dict[str, Any]:
    """An ``AzureResource`` entity of Incidents_ListEntities naming ``resource_id``."""
    entity_id = str(uuid.UUID(int=rng.getrandbits(128)))
    return {
        "id": f"{entity_id}",
        "name": entity_id,
        "type": "Microsoft.SecurityInsights/Entities",
        "kind": "AzureResource",
        "properties": {
            "resourceId": resource_id,
            "subscriptionId": resource_id.split("/")[2],
            "friendlyName": resource_id.rsplit("/", 1)[-1],
        },
    }


def first_alert(incident: Any) -> datetime.datetime:
    """A stored incident's first alert: its alerts' earliest ``timeGenerated``, else its
    first activity, else its creation."""
    times = [
        str(a["properties"]["timeGenerated"])
        for a in incident.alerts
        if a.get("properties", {}).get("timeGenerated")
    ]
    props = incident.resource["properties"]
    text = (
        min(times) if times else str(props.get("firstActivityTimeUtc") or props["createdTimeUtc"])
    )
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def deploy_to_incident(
    deployments: Deployments,
    incident: Any,
    resource_id: str,
    minutes_before: float,
    name: str,
) -> StoredDeployment:
    """Make ``incident`` (a stored incident: ``resource``, ``entities``) name ``resource_id``
    as an entity, deployed ``minutes_before`` minutes before its first alert."""
    rng = random.Random(f"{incident.resource['id']}|{resource_id}")  # noqa: S311 - sample data
    known = {e.get("properties", {}).get("resourceId", "").lower() for e in incident.entities}
    if resource_id.lower() not in known:
        entity = azure_resource_entity(resource_id, rng)
        scope = incident.resource["id"].rsplit("/incidents/", 1)[0]
        entity["id"] = f"{scope}/Entities/{entity['name']}"
        incident.entities.append(entity)
    when = first_alert(incident)
    return deployments.deploy_before(resource_id, when, minutes_before, name)


def quiet_resource(
    rows: Iterable[dict[str, Any]],
    deployments: Deployments,
    around: datetime.datetime,
    *,
    days: float = 1.0,
) -> dict[str, Any]:
    """The first of ``rows`` (Resource Graph resources, by id) that no deployment touched
    within ``days`` days of ``around`` (an incident's first alert): a deployment placed just
    before that alert is then the one a card shows. ``LookupError`` when there is none."""
    window = datetime.timedelta(days=days)
    since, until = stamp(around - window), stamp(around + window)
    busy = {
        target.lower()
        for group in deployments.groups.values()
        for stored in group.values()
        if since <= stored.when <= until
        for target in stored.targets
    }
    for row in sorted(rows, key=lambda r: str(r["id"])):
        if str(row["id"]).lower() not in busy:
            return row
    raise LookupError(f"every resource was deployed to within {days:g} days of {around}")


def seed_with_incidents(
    deployments: Deployments,
    rows: Iterable[dict[str, Any]],
    incidents: Iterable[Any],
    *,
    per_group: int = 6,
    random_seed: int | None = 0,
) -> int:
    """Deployments in the groups of the Resource Graph ``rows``; and, for each of ``incidents``
    (stored incidents), a resource it names, deployed 3 to 90 minutes before its first alert
    (when there are rows). How many deployments were added."""
    pool = list(rows)
    added = deployments.seed(pool, per_group=per_group, random_seed=random_seed)
    rng = random.Random(random_seed)  # noqa: S311 - sample data
    for number, stored in enumerate(incidents):
        if pool:
            target = rng.choice(pool)["id"]
            name = f"release-{number:04d}"
            deploy_to_incident(deployments, stored, target, rng.randint(3, 90), name)
            added += 1
    return added


def deploy_before_incident(
    deployments: Deployments,
    rows: Iterable[dict[str, Any]],
    incident: Any,
    name: str,
    minutes_before: float,
    resource_id: str | None = None,
) -> dict[str, Any]:
    """Make ``incident`` (a stored incident) name ``resource_id`` (default: the first of
    ``rows`` no deployment touched within a day of its first alert) and deploy it
    ``minutes_before`` that alert; returns the deployment. LookupError when there is no such
    resource."""
    if resource_id is None:
        resource_id = str(quiet_resource(rows, deployments, first_alert(incident))["id"])
    made = deploy_to_incident(deployments, incident, resource_id, minutes_before, name)
    return made.resource
