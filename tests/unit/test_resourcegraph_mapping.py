"""A Resource Graph row as Warden's CMDB CI contract: ids, owner and environment from tags."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.resourcegraph.mapping import ci_from_row, needs_tags
from core.errors import InvalidPayload
from core.itsm import ConfigurationItem

SEEN = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
ID = (
    "/subscriptions/7F0E4A2C-6B1D-4C3E-9A8F-2D5B6C7E8F90/resourceGroups/rg"
    "/providers/Microsoft.Compute/virtualMachines/vm-1"
)


def _row(tags: object) -> dict[str, object]:
    """A Resources row with these tags."""
    return {"id": ID, "name": "vm-1", "type": "Microsoft.Compute/virtualMachines", "tags": tags}


def _ci(
    tags: object, owner: tuple[str, ...] = ("owner",), env: tuple[str, ...] = ("env",)
) -> ConfigurationItem:
    """The CI of a row with these tags."""
    return ci_from_row(_row(tags), owner_tags=owner, env_tags=env, seen_at=SEEN)


def test_mapping_tags_any_case_fill_owner_and_env() -> None:
    """Tag names match whatever their case; the id and type are lower-cased."""
    item = _ci({"OWNER": " Adele Vance ", "Env": "prod", "costCenter": "4600"})
    assert (item.owner, item.env) == ("Adele Vance", "prod")
    assert item.ci_id == ID.lower() and item.type == "microsoft.compute/virtualmachines"
    assert item.tags == ["Env=prod", "OWNER= Adele Vance ", "costCenter=4600"]
    assert item.last_seen_utc == SEEN and not needs_tags(item)


def test_mapping_first_configured_tag_present_wins() -> None:
    """With several tag names configured, the first one present (and not blank) is used."""
    item = _ci({"CreatedBy": "Lee Gu", "owner": "  "}, owner=("owner", "CreatedBy"))
    assert item.owner == "Lee Gu"


def test_mapping_missing_tags_keep_the_ci_with_empty_fields() -> None:
    """No tags at all (null, as Resource Graph sends): the CI is kept, owner and env empty."""
    item = _ci(None)
    assert (item.owner, item.env, item.tags) == (None, None, [])
    assert needs_tags(item)


def test_mapping_row_without_id_is_refused() -> None:
    """A row that is not a resource (no ARM id) is refused, naming the field."""
    with pytest.raises(InvalidPayload) as caught:
        ci_from_row({"name": "x"}, owner_tags=["owner"], env_tags=["env"], seen_at=SEEN)
    assert caught.value.field == "id"
