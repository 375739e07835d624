"""What Entra ID's provisioning service sends (recorded payloads) keeps the roster right.

The bodies are those Entra sends in a provisioning cycle (its documented requests, with the
ids of this run filled in): a ``userName eq`` lookup before a create, capitalised ``op``
values, booleans as strings, a manager as a bare id, group members added and removed by value.
"""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import WardenFactory
from tests.integration.scim_support import Scim, scim_warden

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def entra_user(upn: str, object_id: str) -> dict[str, Any]:
    """Entra's POST /Users (default attribute mappings)."""
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": object_id,
        "userName": upn,
        "active": True,
        "displayName": "Adele Vance",
        "emails": [{"primary": True, "type": "work", "value": upn}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Adele Vance", "familyName": "Vance", "givenName": "Adele"},
        "roles": [],
        ENTERPRISE: {"department": "Retail"},
    }


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    """A PatchOp as Entra words it."""
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


async def _listed(scim: Scim, query: str) -> list[dict[str, Any]]:
    answer = await scim.ok("GET", query)
    resources: list[dict[str, Any]] = answer.get("Resources", [])
    assert answer["totalResults"] == len(resources)
    return resources


async def test_scim_entra_user_lookup_then_create_found_by_user_name(
    start_warden: WardenFactory,
) -> None:
    """Entra looks the UPN up (none), creates the person, then finds them by UPN or object id."""
    scim = await scim_warden(start_warden)
    assert await _listed(scim, '/Users?filter=userName eq "AdeleV@contoso.com"') == []
    created = await scim.ok("POST", "/Users", entra_user("AdeleV@contoso.com", "oid-1"), 201)
    assert created["meta"]["resourceType"] == "User" and created["active"] is True
    by_upn = await _listed(scim, '/Users?filter=userName eq "adelev@CONTOSO.com"')
    by_oid = await _listed(scim, '/Users?filter=externalId eq "oid-1"')
    assert [u["id"] for u in by_upn] == [u["id"] for u in by_oid] == [created["id"]]
    assert by_upn[0][ENTERPRISE]["department"] == "Retail"


async def test_scim_entra_disable_with_string_false_deactivates(
    start_warden: WardenFactory,
) -> None:
    """``Replace active "False"`` (Entra's wording) deactivates; ``"True"`` brings them back."""
    scim = await scim_warden(start_warden)
    user = await scim.user("leaver@contoso.com")
    path = f"/Users/{user['id']}"
    off = patch({"op": "Replace", "path": "active", "value": "False"})
    assert (await scim.ok("PATCH", path, off))["active"] is False
    assert (await scim.ok("GET", path))["active"] is False
    on = patch({"op": "Replace", "value": {"active": "True", "displayName": "Back Again"}})
    back = await scim.ok("PATCH", path, on)
    assert (back["active"], back["displayName"]) == (True, "Back Again")


async def test_scim_entra_multi_attribute_replace_updates_each(start_warden: WardenFactory) -> None:
    """A replace through a value filter and a sub-attribute path both land."""
    scim = await scim_warden(start_warden)
    created = await scim.ok("POST", "/Users", entra_user("AdeleV@contoso.com", "oid-1"), 201)
    body = patch(
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "adele@contoso.com"},
        {"op": "Replace", "path": "name.familyName", "value": "Vance-Smith"},
    )
    changed = await scim.ok("PATCH", f"/Users/{created['id']}", body)
    assert changed["emails"][0]["value"] == "adele@contoso.com"
    assert changed["name"]["familyName"] == "Vance-Smith"
    assert changed["meta"]["version"] != created["meta"]["version"]


async def test_scim_entra_manager_as_bare_id_is_stored(start_warden: WardenFactory) -> None:
    """``Add …:manager`` with the manager's id as a plain string sets the manager."""
    scim = await scim_warden(start_warden)
    boss = await scim.user("boss@contoso.com")
    worker = await scim.user("worker@contoso.com")
    body = patch({"op": "Add", "path": f"{ENTERPRISE}:manager", "value": boss["id"]})
    changed = await scim.ok("PATCH", f"/Users/{worker['id']}", body)
    assert changed[ENTERPRISE]["manager"]["value"] == boss["id"]


async def test_scim_entra_group_members_added_and_removed(start_warden: WardenFactory) -> None:
    """Create a group, add two members, remove one by value; ``excludedAttributes`` hides them."""
    scim = await scim_warden(start_warden)
    one, two = await scim.user("one@contoso.com"), await scim.user("two@contoso.com")
    group_body = {
        "schemas": [GROUP_SCHEMA],
        "externalId": "group-oid",
        "displayName": "Compliance Owners",
        "meta": {"resourceType": "Group"},
        "members": [],
    }
    group = await scim.ok("POST", "/Groups", group_body, 201)
    path = f"/Groups/{group['id']}"
    add = patch(
        {"op": "Add", "path": "members", "value": [{"value": one["id"]}, {"value": two["id"]}]}
    )
    await scim.ok("PATCH", path, add)
    remove = patch({"op": "Remove", "path": "members", "value": [{"value": one["id"]}]})
    await scim.ok("PATCH", path, remove)
    assert [m["value"] for m in (await scim.ok("GET", path))["members"]] == [two["id"]]
    found = await _listed(
        scim, '/Groups?excludedAttributes=members&filter=displayName eq "Compliance Owners"'
    )
    assert [g["id"] for g in found] == [group["id"]] and "members" not in found[0]
