"""ARM deployments as Warden sees them: what was deployed where, and when (no vendor code).

A ``Deployment`` is one deployment of a resource group (an ARM template or Bicep run) and the
resources it touched; ``DeploymentNote`` is what an incident card says about the latest one
that touched a resource of the incident before its first alert; ``DeploymentLink`` ties a
deployment to an ITSM change, with who linked it and when.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

_GROUP = re.compile(r"^/subscriptions/[^/]+/resourcegroups/[^/]+", re.IGNORECASE)


def resource_group_of(resource_id: str) -> str | None:
    """The lower-case resource group id of an ARM resource id; None outside a group."""
    found = _GROUP.match(resource_id.strip())
    return found.group(0).lower() if found is not None else None


class Deployment(BaseModel):
    """One deployment of a resource group and the resources (lower-case ids) it touched."""

    model_config = ConfigDict(frozen=True)

    deployment_id: str = Field(min_length=1, description="The ARM id, lower-cased.")
    resource_group: str = Field(description="The resource group's id, lower-cased.")
    name: str = Field(min_length=1, description="The deployment's name.")
    state: str = Field(description="provisioningState: Succeeded, Failed, Running, ...")
    timestamp: datetime = Field(description="When it ended (or last changed), UTC.")
    duration: str | None = Field(default=None, description="ISO 8601 duration, as ARM says.")
    correlation_id: str | None = None
    targets: tuple[str, ...] = Field(default=(), description="Resources touched, lower-cased.")
    error: str | None = Field(default=None, description="ARM's error message when it failed.")


class DeploymentNote(BaseModel):
    """What an incident card says: ``name`` ended ``minutes`` before the first alert."""

    model_config = ConfigDict(frozen=True)

    name: str
    minutes: int = Field(ge=0)
    state: str = "Succeeded"
    resource: str = Field(description="The incident's resource it touched (lower-case id).")

    @property
    def line(self) -> str:
        """``Deployed <name> <N> minutes before the first alert``."""
        unit = "minute" if self.minutes == 1 else "minutes"
        verb = "Deployed" if self.state.lower() == "succeeded" else f"Deployment ({self.state})"
        return f"{verb} {self.name} {self.minutes} {unit} before the first alert"


class DeploymentLink(BaseModel):
    """A deployment linked to an ITSM change, by whom and when."""

    model_config = ConfigDict(frozen=True)

    deployment_id: str
    deployment_name: str
    change: str = Field(description="The change's number, e.g. CHG0030001.")
    linked_by: str = Field(description="Who linked it (display name).")
    linked_at: datetime
