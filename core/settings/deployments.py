"""ARM deployments' settings (``WARDEN_DEPLOYMENTS__<FIELD>``): deployments on cards and CIs.

With Sentinel on, Warden reads the ARM deployments of the resource groups holding an
incident's Azure resources (through the outbox, with Warden's ARM identity) and shows the
latest one that touched one of them before the first alert, within ``lookback_minutes``.
A CMDB sync queues a read of every resource group it saw.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class DeploymentSettings(BaseModel):
    """ARM deployments' settings; every field has a ``WARDEN_DEPLOYMENTS__`` variable."""

    enabled: bool = Field(
        True,
        description="Read ARM deployments of incidents' resource groups and show the latest "
        "one before the first alert on the card (needs Sentinel).",
    )
    lookback_minutes: int = Field(
        24 * 60,
        ge=1,
        le=90 * 24 * 60,
        description="How long before an incident's first alert a deployment still counts "
        "as related (minutes).",
    )
    page_size: int = Field(50, ge=1, le=1000, description="Deployments per ARM list page.")
    max_per_group: int = Field(
        200,
        ge=1,
        description="Newest deployments read per resource group at most (with their "
        "operations when they fall in the look-back).",
    )
