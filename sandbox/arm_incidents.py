"""What a test or the control API does to the ARM sandbox's Sentinel incidents.

Served workspaces, generated incidents, changes and comments made "in the portal", and the
incidents as Sentinel's GET answers them; ``sandbox.arm.ArmSandbox`` mixes these in.
"""

from __future__ import annotations

import datetime
import random
import uuid
from typing import Any

from sandbox.arm_seed import PORTAL_URL, Scope, generate_incident
from sandbox.arm_store import IncidentStore, Workspace, check_resource
from sandbox.sentinel_samples import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE

DEFAULT_SCOPE = Scope(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
"""The workspace generated incidents go to unless told otherwise."""


class IncidentControls:
    """Incidents of the sandbox's ``store``, at the sandbox's ``now``."""

    store: IncidentStore

    def now(self) -> datetime.datetime:
        """The sandbox time (``ArmSandbox.now``)."""
        raise NotImplementedError

    def workspace(self, scope: Scope | None = None) -> Workspace:
        """Return a served workspace (the default one unless ``scope`` is given); KeyError."""
        chosen = scope or DEFAULT_SCOPE
        found = {w.scope.key: w for w in self.store.workspaces()}.get(chosen.key)
        if found is None:
            raise KeyError(f"workspace {chosen} is not served")
        return found

    def add_workspace(self, scope: Scope) -> Workspace:
        """Serve another workspace."""
        return self.store.add_workspace(scope)

    def seed(
        self, count: int, *, scope: Scope | None = None, random_seed: int | None = None
    ) -> list[dict[str, Any]]:
        """Add ``count`` realistic incidents (created in the last 14 days); returns them."""
        workspace = self.workspace(scope)
        rng = random.Random(random_seed)  # noqa: S311 - sample data, not secrets
        made = []
        for _ in range(count):
            generated = generate_incident(workspace.scope, rng, workspace.next_number, self.now())
            made.append(self.store.insert(workspace, generated).render())
        return made

    def create_incident(
        self,
        properties: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        scope: Scope | None = None,
    ) -> dict[str, Any]:
        """Make a new incident appear now, as an analytics rule would; returns it.

        ``properties`` override the generated ones; ValueError if the result is invalid.
        """
        workspace = self.workspace(scope)
        now = self.now()
        rng = random.Random()  # noqa: S311 - sample data, not secrets
        generated = generate_incident(workspace.scope, rng, workspace.next_number, now)
        resource = generated.resource
        if name is not None:
            resource.update(id=workspace.scope.incident_id(name), name=name)
            resource["properties"]["incidentUrl"] = PORTAL_URL + resource["id"]
        stamp_now = self.store.tick()
        resource["properties"].update(createdTimeUtc=stamp_now, lastModifiedTimeUtc=stamp_now)
        resource["properties"].update(properties or {})
        check_resource(resource)
        return self.store.insert(workspace, generated).render()

    def portal_update(
        self, name: str, scope: Scope | None = None, **changes: Any
    ) -> dict[str, Any]:
        """Change an incident as a person in the portal would: new etag and timestamp.

        ``changes`` are incident properties (``status="Active"``, ``severity="Low"``, ...).
        Raises KeyError for an unknown workspace or incident, ValueError if Sentinel
        would refuse the result (closing without a classification).
        """
        workspace = self.workspace(scope)
        if name.lower() not in workspace.incidents:
            raise KeyError(f"no incident {name!r}")
        return self.store.portal_update(workspace, name, changes)

    def portal_comment(
        self, name: str, message: str, *, author: str = "Megan Bowen", scope: Scope | None = None
    ) -> dict[str, Any]:
        """Add a comment as a person in the portal would (the incident's etag stays)."""
        workspace = self.workspace(scope)
        stored = workspace.incidents.get(name.lower())
        if stored is None:
            raise KeyError(f"no incident {name!r}")
        body = {"properties": {"message": message}}
        answer, _ = self.store.put_comment(stored, str(uuid.uuid4()), body, {"name": author})
        return answer

    def incident(self, name: str, scope: Scope | None = None) -> dict[str, Any]:
        """Return an incident as GET answers it; raises KeyError if there is none."""
        found = self.workspace(scope).incidents.get(name.lower())
        if found is None:
            raise KeyError(f"no incident {name!r}")
        return found.render()

    def incidents(self, scope: Scope | None = None) -> list[dict[str, Any]]:
        """Return every incident of a workspace as GET answers them."""
        return [item.render() for item in self.workspace(scope).incidents.values()]

    def comments(self, name: str, scope: Scope | None = None) -> list[dict[str, Any]]:
        """Return the comments of an incident, oldest first; KeyError if there is none."""
        found = self.workspace(scope).incidents.get(name.lower())
        if found is None:
            raise KeyError(f"no incident {name!r}")
        return sorted(found.comments.values(), key=lambda c: c["properties"]["createdTimeUtc"])
