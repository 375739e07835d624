"""The CMDB sync's settings (``WARDEN_CMDB__<FIELD>``): Resource Graph → CMDB CIs.

The sync pages Azure Resource Graph (``query`` over ``subscriptions``) with Warden's ARM
identity (``AZURE_*``, ``WARDEN_ARM_ENDPOINT``), stores each resource as a CMDB CI, and, with
``servicenow_sync``, upserts it into ServiceNow's ``cmdb_ci`` too. Owner and environment
come from the first of the named tags present on the resource.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

from core.schedule import parse_time_of_day

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
    nightly: bool = Field(
        False,
        description="Run the sync every night inside the server, on one replica at a time; a "
        "run a stopped replica left half-way is resumed from its checkpoint.",
    )
    nightly_at: str = Field(
        "01:30",
        description="Time of day of the nightly sync, `HH:MM` in UTC; a night missed while "
        "Warden was down is caught up when it starts.",
    )
    check_seconds: float = Field(
        60.0,
        gt=0,
        description="How often each replica checks whether the nightly sync is due (or left "
        "unfinished by another replica).",
    )
    retry_seconds: float = Field(
        900.0,
        ge=0,
        description="After a failed nightly run, how long before it is resumed.",
    )
    servicenow_sync: bool = Field(
        False,
        description="Also upsert each CI into ServiceNow `cmdb_ci` (exact match on the Azure "
        "resource id in `correlation_id`); needs the ServiceNow connector.",
    )

    @property
    def nightly_time(self) -> time:
        """``WARDEN_CMDB__NIGHTLY_AT`` as a time of day in UTC."""
        return parse_time_of_day(self.nightly_at)

    @field_validator("nightly_at")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        parse_time_of_day(value)
        return value.strip()

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
