"""Builders for the reconcile tests: old incidents in the ARM sandbox, the command line's env."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from sandbox.arm import DEFAULT_SCOPE, ArmSandbox
from tests.support import SECRET

ROOT = Path(__file__).resolve().parents[2]
OPEN_FILTER = "properties/status eq 'New' or properties/status eq 'Active'"
WORKSPACE_TEXT = (
    f"{DEFAULT_SCOPE.subscription}/{DEFAULT_SCOPE.resource_group}/{DEFAULT_SCOPE.workspace}"
)


def make_incidents(
    arm: ArmSandbox, statuses: Sequence[str], *, days_ago: float = 3
) -> list[dict[str, Any]]:
    """Incidents in these statuses, created and last changed ``days_ago`` (a second apart).

    Three days back is beyond the poller's first lookback (one day): only a reconcile finds
    them. Titles are ``Missed #<n> (<status>)``.
    """
    base = arm.now() - timedelta(days=days_ago)
    made = []
    for number, status in enumerate(statuses):
        stamp = (base + timedelta(seconds=number)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
        properties: dict[str, Any] = {
            "title": f"Missed #{number} ({status})",
            "status": status,
            "createdTimeUtc": stamp,
            "lastModifiedTimeUtc": stamp,
        }
        if status == "Closed":
            properties["classification"] = "Undetermined"
        made.append(arm.create_incident(properties))
    return made


def open_keys(arm: ArmSandbox) -> set[str]:
    """The store keys (lower-cased ARM ids) of the sandbox's open incidents."""
    return {
        str(i["id"]).lower()
        for i in arm.incidents()
        if i["properties"]["status"] in ("New", "Active")
    }


def arm_settings(arm: ArmSandbox) -> dict[str, Any]:
    """Settings that point Warden's Sentinel connector at the sandbox's default workspace."""
    return {
        "sentinel_workspaces": WORKSPACE_TEXT,
        "arm_endpoint": arm.url,
        "arm_ca_bundle": arm.ca_path,
        "graph_endpoint": arm.graph_url,
        "azure_tenant_id": arm.tenant_id,
        "azure_client_id": arm.client_id,
        "azure_client_secret": arm.client_secret,
        "azure_authority_host": arm.authority,
    }


async def run_cli(
    arm: ArmSandbox, var_dir: Path, database_url: str, *args: str, keys: Sequence[str] = ()
) -> tuple[int, str]:
    """Run ``python app.py <args>`` against the sandbox and this database; (exit code, output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WARDEN_", "AZURE_"))}
    env.update(
        WARDEN_VAR_DIR=str(var_dir),
        WARDEN_DATABASE_URL=database_url,
        WARDEN_SENTINEL_WEBHOOK_SECRETS=SECRET,
        WARDEN_SENTINEL_WORKSPACES=WORKSPACE_TEXT,
        WARDEN_ARM_ENDPOINT=arm.url,
        WARDEN_ARM_CA_BUNDLE=str(arm.ca_path),
        AZURE_TENANT_ID=arm.tenant_id,
        AZURE_CLIENT_ID=arm.client_id,
        AZURE_CLIENT_SECRET=arm.client_secret,
        AZURE_AUTHORITY_HOST=arm.authority,
        COLUMNS="200",
    )
    if keys:
        env["WARDEN_ENCRYPTION_KEYS"] = ",".join(keys)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "app.py",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    return int(proc.returncode or 0), output.decode()
