"""Cost per resource per day, as Cost Management exports report it (the domain side)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceDay:
    """Cost of one resource (lower-cased ARM id) on one day (``YYYY-MM-DD``), summed."""

    resource_id: str
    day: str
    cost: float
    currency: str
    subscription_id: str
    resource_group: str


@dataclass(frozen=True)
class ExportRun:
    """One run of an export (its manifest): ``export_key`` is the export and its period."""

    run_key: str
    export_key: str
    run_id: str
    period_start: str
    period_end: str
    submitted_at: float
    blobs: int


@dataclass(frozen=True)
class ResourceCost:
    """A resource's cost over a period, in its billing currency."""

    resource_id: str
    cost: float
    currency: str
    resource_group: str = ""

    def shown(self) -> str:
        """The cost as a person reads it: ``1,234.56 EUR``."""
        return f"{self.cost:,.2f} {self.currency}".strip()
