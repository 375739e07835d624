"""The OData options of Sentinel's Incidents_List (``$filter``, ``$orderby``, ``$top``).

The swagger says only that ``$filter`` is "a Boolean condition"; Warden builds OData's plain
forms: comparisons on ``properties/<field>`` joined by ``and`` or ``or``, one ``$orderby``
key, and a ``$top`` within the swagger's 1..1000 (checked before any request).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from core.models import IncidentStatus

MAX_TOP = 1000
"""The swagger's maximum ``$top`` of Incidents_List."""


def list_query(
    modified_since: datetime | None,
    status_not: IncidentStatus | str | None,
    order: str,
    top: int,
) -> dict[str, str]:
    """Modified at or after ``modified_since``, not in ``status_not``, by last change."""
    if order not in ("asc", "desc"):
        raise ValueError("order must be 'asc' or 'desc'")
    if not 1 <= top <= MAX_TOP:
        raise ValueError(f"top must be from 1 to {MAX_TOP}")
    clauses = []
    if modified_since is not None:  # an OData DateTimeOffset literal, in UTC
        since = modified_since if modified_since.tzinfo else modified_since.replace(tzinfo=UTC)
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        clauses.append(f"properties/lastModifiedTimeUtc ge {stamp}")
    if status_not is not None:
        quoted = str(status_not).replace("'", "''")
        clauses.append(f"properties/status ne '{quoted}'")
    query = {"$orderby": f"properties/lastModifiedTimeUtc {order}", "$top": str(top)}
    if clauses:
        query["$filter"] = " and ".join(clauses)
    return query


def status_query(statuses: Sequence[IncidentStatus | str], top: int) -> dict[str, str]:
    """The OData options of Incidents_List for the incidents in any of ``statuses``."""
    if not statuses:
        raise ValueError("statuses must name at least one status")
    if not 1 <= top <= MAX_TOP:
        raise ValueError(f"top must be from 1 to {MAX_TOP}")
    quoted = (str(status).replace("'", "''") for status in statuses)
    return {
        "$filter": " or ".join(f"properties/status eq '{status}'" for status in quoted),
        "$orderby": "properties/createdTimeUtc asc",
        "$top": str(top),
    }
