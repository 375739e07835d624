"""A Resource Graph row as Warden's CMDB CI contract (pure).

``ciId`` is the resource id in lower case (ARM ids are case-insensitive and Resource Graph
does not always spell one the same way); ``name`` and ``type`` are the row's; ``owner`` and
``env`` are the values of the first configured tag names present (tag names compare
case-insensitively, as Azure's do; a blank value counts as missing); ``tags`` are every tag
as ``name=value``, sorted; ``lastSeenUtc`` is when the sync saw the resource.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from core.errors import InvalidPayload
from core.itsm import ConfigurationItem


def tag_value(tags: Mapping[str, Any], names: Sequence[str]) -> str | None:
    """The value of the first of ``names`` present in ``tags`` (any case), or None."""
    return _first(_lowered(tags), names)


def _lowered(tags: Mapping[str, Any]) -> dict[str, Any]:
    """``tags`` keyed by trimmed, lower-case name."""
    return {str(key).strip().lower(): value for key, value in tags.items()}


def _first(lowered: Mapping[str, Any], names: Sequence[str]) -> str | None:
    """The first non-blank value of ``names`` in lower-cased ``lowered``, trimmed."""
    for name in names:
        value = lowered.get(name.strip().lower())
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def ci_from_row(
    row: Mapping[str, Any],
    *,
    owner_tags: Sequence[str],
    env_tags: Sequence[str],
    seen_at: datetime,
) -> ConfigurationItem:
    """The CI of one ``Resources`` row; ``InvalidPayload`` names a missing field."""
    resource_id, name, kind = row.get("id"), row.get("name"), row.get("type")
    if not isinstance(resource_id, str) or not resource_id.startswith("/subscriptions/"):
        raise InvalidPayload("the row has no ARM resource id", field="id")
    if not isinstance(name, str) or not name:
        raise InvalidPayload("the row has no name", field="name")
    tags = row.get("tags")
    tags = tags if isinstance(tags, dict) else {}
    lowered = _lowered(tags)
    return ConfigurationItem(
        ci_id=resource_id.lower(),
        name=name,
        type=str(kind or "").lower(),
        owner=_first(lowered, owner_tags),
        env=_first(lowered, env_tags),
        tags=sorted(f"{key}={'' if value is None else value}" for key, value in tags.items()),
        last_seen_utc=seen_at,
    )


def needs_tags(item: ConfigurationItem) -> bool:
    """True when the CI lacks its owner or its environment tag."""
    return item.owner is None or item.env is None
