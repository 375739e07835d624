"""Realistic resources for the sandbox's Resource Graph ``Resources`` table.

Several subscriptions and resource groups, the common resource types, and owner/environment
tags as real tenants have them: often missing, spelled differently (``owner``, ``Owner``,
``CreatedBy``; ``env``, ``Environment``) and with inconsistent values (``prod``,
``Production``, ``PRD``; an owner as an e-mail in any case, a user name, a display name or
a team). Generation is deterministic for a given ``random.Random``.
"""

from __future__ import annotations

import random
from typing import Any

SEED_SUBSCRIPTIONS = (
    "7f0e4a2c-6b1d-4c3e-9a8f-2d5b6c7e8f90",
    "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    "9c8b7a6d-5e4f-4321-8fed-cba987654321",
    "4d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b0a",
)
"""The subscriptions seeded resources live in."""

_TYPES = (
    ("Microsoft.Compute/virtualMachines", "vm", 30),
    ("Microsoft.Compute/disks", "disk", 20),
    ("Microsoft.Network/networkInterfaces", "nic", 15),
    ("Microsoft.Storage/storageAccounts", "st", 10),
    ("Microsoft.Web/sites", "app", 8),
    ("Microsoft.Sql/servers/databases", "sqldb", 6),
    ("Microsoft.KeyVault/vaults", "kv", 5),
    ("Microsoft.Network/publicIPAddresses", "pip", 6),
)
_GROUPS = ("rg-web-prod", "rg-data-prod", "rg-shared", "rg-dev", "rg-test", "rg-sandbox")
_LOCATIONS = ("westeurope", "northeurope", "eastus", "uksouth")
_OWNER_KEYS = ("owner", "Owner", "OWNER", "CreatedBy")
_ENV_KEYS = ("environment", "Environment", "env", "ENV")
_ENVS = ("prod", "Production", "PRD", "dev", "Development", "test", "UAT", "staging")
_OWNERS = (
    "david.loo@example.com",
    "Beth.Anglin@example.com",
    "abel.tuter",
    "Adele Vance",
    "team-platform",
    "",
)


def generate_resource(
    rng: random.Random, number: int, subscriptions: tuple[str, ...], tenant_id: str
) -> dict[str, Any]:
    """One realistic resource; its tags are missing, partial or inconsistent, as in real life."""
    kind, prefix, _ = rng.choices(_TYPES, weights=[w for *_, w in _TYPES])[0]
    subscription, group = rng.choice(subscriptions), rng.choice(_GROUPS)
    name = f"{prefix}-{group.removeprefix('rg-')}-{number:06d}"
    if kind == "Microsoft.Sql/servers/databases":
        kind_path = f"Microsoft.Sql/servers/sql-{group.removeprefix('rg-')}/databases"
    else:
        kind_path = kind
    scope = f"/subscriptions/{subscription}/resourceGroups/{group}"
    resource_id = f"{scope}/providers/{kind_path}/{name}"
    tags: dict[str, str] | None = {}
    roll = rng.random()
    if roll < 0.15:
        tags = None
    elif roll < 0.25:
        tags = {"costCenter": str(rng.randint(1000, 9999))}
    else:
        assert tags is not None
        if rng.random() < 0.85:
            tags[rng.choice(_OWNER_KEYS)] = rng.choice(_OWNERS)
        if rng.random() < 0.8:
            tags[rng.choice(_ENV_KEYS)] = rng.choice(_ENVS)
        if rng.random() < 0.3:
            tags["costCenter"] = str(rng.randint(1000, 9999))
    return {
        "id": resource_id,
        "name": name,
        "type": kind.lower(),
        "tenantId": tenant_id,
        "kind": "",
        "location": rng.choice(_LOCATIONS),
        "resourceGroup": group,
        "subscriptionId": subscription,
        "managedBy": "",
        "sku": None,
        "plan": None,
        "properties": {"provisioningState": "Succeeded"},
        "tags": tags,
        "identity": None,
        "zones": None,
        "extendedLocation": None,
    }
