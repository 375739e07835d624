"""The CMDB sync's settings (``WARDEN_CMDB__<FIELD>``): Resource Graph → CMDB CIs.

The sync pages Azure Resource Graph (``query`` over ``subscriptions``) with Warden's ARM
identity (``AZURE_*``, ``WARDEN_ARM_ENDPOINT``), stores each resource as a CMDB CI, and, with
``servicenow_sync``, upserts it into ServiceNow's ``cmdb_ci`` too. Owner and environment
come from the first of the named tags present on the resource.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

_GUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")

DEFAULT_QUERY = (
    "Resources | project id, name, type, subscriptionId, resourceGroup, location, tags "
    "| order by id asc"
)
"""Every resource, in a stable order (paging must not shift under the sync)."""


def _names(value: object) -> object:
    """A comma-separated variable as a list of trimmed names."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class CmdbSettings(BaseModel):
    """The CMDB sync's settings; every field has a ``WARDEN_CMDB__`` variable."""

    subscriptions: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated subscription ids Resource Graph is asked about "
        "(empty: every subscription Warden's identity can read).",
    )
    query: str = Field(
        DEFAULT_QUERY,
        min_length=1,
        description="The Resource Graph (KQL) query; it must return id, name, type and tags "
        "and order its rows stably.",
    )
    page_size: int = Field(1000, ge=1, le=1000, description="Rows per Resource Graph page.")
    owner_tags: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["owner"],
        description="Comma-separated tag names holding a resource's owner, first present wins "
        "(compared case-insensitively).",
    )
    env_tags: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["environment", "env"],
        description="Comma-separated tag names holding a resource's environment, first wins.",
    )
    retire_after_runs: int = Field(
        3,
        ge=1,
        description="A CI missing from this many finished runs in a row is marked retired "
        "(never deleted).",
    )
    servicenow_sync: bool = Field(
        False,
        description="Also upsert each CI into ServiceNow `cmdb_ci` (exact match on the Azure "
        "resource id in `correlation_id`); needs the ServiceNow connector.",
    )

    @field_validator("subscriptions", "owner_tags", "env_tags", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return _names(value)

    @field_validator("subscriptions")
    @classmethod
    def _guids(cls, value: list[str]) -> list[str]:
        bad = [item for item in value if not _GUID.match(item)]
        if bad:
            raise ValueError(f"not a subscription id: {bad[0]!r}")
        return value

    @field_validator("owner_tags", "env_tags")
    @classmethod
    def _some(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one tag")
        return value
