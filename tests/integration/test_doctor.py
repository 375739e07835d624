"""``python app.py doctor`` against the sandboxes: ARM (Sentinel, Policy, Entra ID), Graph
(SharePoint) and ServiceNow, as an operator runs it.

The command runs for real: once as a process, the others through typer's runner in a thread
(the sandboxes keep serving on the test's event loop). Each failure case breaks one thing
and reads the table's row for it, its fix and the exit code.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from azure.identity.aio import ClientSecretCredential
from typer.testing import CliRunner

from app import cli
from core.crypto import generate_key
from core.settings import Settings
from core.store.store import Store
from graph.provision import provision
from sandbox.arm import ArmSandbox, Fault, run_arm_sandbox
from sandbox.graph import GraphSandbox, run_graph_sandbox
from sandbox.sentinel_samples import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE
from sandbox.servicenow import ServiceNowSandbox, run_servicenow_sandbox

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
HOST = "contoso.sharepoint.com"
SITE = f"{HOST}:/sites/Evidence"
GRAPH_ROLES = ["Sites.Manage.All", "GroupMember.Read.All", "User.Read.All"]
OWN_PREFIXES = ("WARDEN_", "AZURE_", "MICROSOFT_", "BOT_")


def whsec() -> str:
    """A new well-formed webhook secret."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class World:
    """The three sandboxes and the environment of a Warden connected to all of them."""

    arm: ArmSandbox
    graph: GraphSandbox
    snow: ServiceNowSandbox
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return self.env["WARDEN_DATABASE_URL"]

    async def migrate(self) -> None:
        """``db upgrade`` of the configured database."""
        store = Store.from_url(self.database_url)
        try:
            await store.upgrade()
        finally:
            await store.close()

    async def provision(self) -> None:
        """``provision`` of the SharePoint site, with Warden's identity."""
        values: dict[str, Any] = {"graph_endpoint": self.graph.graph_url, "sharepoint_site": SITE}
        settings = Settings(**values)
        async with ClientSecretCredential(
            self.arm.tenant_id,
            self.arm.client_id,
            self.arm.client_secret,
            authority=self.arm.authority,
            connection_verify=str(self.arm.ca_path),
        ) as credential:
            report = await provision(settings, credential, verify=self.arm.ssl_context())
        assert not report.problems

    def secrets(self) -> list[str]:
        """Every secret of the environment: none may appear in the doctor's output."""
        names = ("AZURE_CLIENT_SECRET", "WARDEN_SERVICENOW__PASSWORD")
        found = [self.env[name] for name in names]
        for name in ("WARDEN_SENTINEL_WEBHOOK_SECRETS", "WARDEN_SERVICENOW__WEBHOOK_SECRETS"):
            found += self.env[name].split(",")
        return found


@dataclass(frozen=True)
class Outcome:
    """What the operator saw: the exit code, the output and the table's rows by check."""

    code: int
    output: str
    rows: dict[str, tuple[str, str, str]]

    def mark(self, check: str) -> str:
        return self.rows[check][0]


@pytest.fixture
async def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    """Every sandbox served, and the environment of a Warden connected to each."""
    for name in list(os.environ):
        if name.startswith(OWN_PREFIXES):
            monkeypatch.delenv(name)
    async with (
        run_arm_sandbox(sandbox=ArmSandbox(seed_examples=False)) as arm,
        run_graph_sandbox(arm) as graph,
        run_servicenow_sandbox() as snow,
    ):
        arm.register_client(arm.client_id, arm.client_secret, graph_roles=GRAPH_ROLES)
        graph.add_site(HOST, "sites/Evidence")
        made = World(arm, graph, snow, tmp_path)
        made.env = {
            "WARDEN_VAR_DIR": str(tmp_path / "var"),
            "WARDEN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'warden.db'}",
            "WARDEN_ARM_ENDPOINT": arm.url,
            "WARDEN_ARM_CA_BUNDLE": str(arm.ca_path),
            "WARDEN_GRAPH_ENDPOINT": graph.graph_url,
            "AZURE_TENANT_ID": arm.tenant_id,
            "AZURE_CLIENT_ID": arm.client_id,
            "AZURE_CLIENT_SECRET": arm.client_secret,
            "AZURE_AUTHORITY_HOST": arm.authority,
            "WARDEN_SENTINEL_WORKSPACES": f"{SUBSCRIPTION}/{RESOURCE_GROUP}/{WORKSPACE}",
            "WARDEN_SENTINEL_WEBHOOK_SECRETS": whsec(),
            "WARDEN_POLICY_SCOPES": f"/subscriptions/{SUBSCRIPTION}",
            "WARDEN_REQUIREMENTS_FILE": str(ROOT / "docs" / "examples" / "requirements.yaml"),
            "WARDEN_SERVICENOW__INSTANCE_URL": snow.url,
            "WARDEN_SERVICENOW__USERNAME": snow.username,
            "WARDEN_SERVICENOW__PASSWORD": snow.password,
            "WARDEN_SERVICENOW__WEBHOOK_SECRETS": whsec(),
            "WARDEN_SHAREPOINT_SITE": SITE,
            "COLUMNS": "400",
        }
        yield made


def read_table(code: int, output: str) -> Outcome:
    """The rows of the doctor's table (wrapped cells joined), keyed by check name."""
    rows: dict[str, tuple[str, str, str]] = {}
    last = ""
    for line in output.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if len(cells) != 4:
            continue
        name, mark, detail, fix = cells
        if name:
            last = name
            rows[name] = (mark, detail, fix)
        elif last:
            old = rows[last]
            rows[last] = (old[0], f"{old[1]} {detail}".strip(), f"{old[2]} {fix}".strip())
    return Outcome(code, output, rows)


async def doctor(world: World, **changes: str | None) -> Outcome:
    """Run ``doctor`` through typer's runner with the world's environment and ``changes``."""
    env = {**world.env, **changes}
    invoke = CliRunner().invoke
    result = await asyncio.to_thread(invoke, cli, ["doctor"], env=env, catch_exceptions=False)
    outcome = read_table(result.exit_code, result.output)
    for secret in world.secrets():
        assert secret not in result.output
    return outcome


def summary_of(output: str) -> tuple[int, int, int, int]:
    """The numbers of the summary line: checks, passed, failed, skipped."""
    found = re.search(r"(\d+) checks: (\d+) passed, (\d+) failed, (\d+) skipped", output)
    assert found, output
    total, good, bad, skipped = (int(n) for n in found.groups())
    return total, good, bad, skipped


async def test_doctor_everything_configured_every_row_passes_exit_0(world: World) -> None:
    """Connected to every sandbox, provisioned and migrated: every row ✓ (or –), exit 0."""
    await world.migrate()
    await world.provision()
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        APP,
        "doctor",
        env={**env, **world.env},
        cwd=world.home,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    seen = read_table(await process.wait(), out.decode())
    assert seen.code == 0, seen.output
    passing = [
        "Configuration",
        "Store",
        "Sentinel webhook",
        f"Sentinel {WORKSPACE}",
        f"Azure Policy /subscriptions/{SUBSCRIPTION}",
        "ServiceNow",
        "ServiceNow webhook",
        "SharePoint",
    ]
    assert {name: seen.mark(name) for name in passing} == dict.fromkeys(passing, "✓")
    assert seen.mark("Bot identity") == seen.mark("Teams manifest") == "–"
    assert summary_of(seen.output) == (12, 8, 0, 4)  # JSM and Defender XDR: not configured
    assert world.arm.calls(successful=True), "the ARM reads really happened"
    assert any("change_request" in entry.summary() for entry in world.snow.requests)
    for secret in world.secrets():
        assert secret not in seen.output


async def test_doctor_wrong_servicenow_password_fails_its_row_with_the_fix(world: World) -> None:
    """A wrong ServiceNow password: ✗ ServiceNow naming the credentials to check, exit 1."""
    await world.migrate()
    await world.provision()
    seen = await doctor(world, WARDEN_SERVICENOW__PASSWORD="not-the-password")
    assert seen.code == 1
    mark, detail, fix = seen.rows["ServiceNow"]
    assert mark == "✗" and "401" in detail
    assert "WARDEN_SERVICENOW__USERNAME/PASSWORD" in fix
    assert seen.mark(f"Sentinel {WORKSPACE}") == seen.mark("SharePoint") == "✓"
    assert seen.mark("ServiceNow webhook") == "✓", "the secrets are checked all the same"
    assert "not-the-password" not in seen.output


async def test_doctor_sentinel_forbidden_names_the_role_to_grant(world: World) -> None:
    """Sentinel answers 403 to the incidents read: ✗ naming the Sentinel role, exit 1."""
    await world.migrate()
    await world.provision()
    world.arm.add_fault(
        Fault(status=403, code="AuthorizationFailed", path="/incidents", times=None)
    )
    seen = await doctor(world)
    assert seen.code == 1
    mark, detail, fix = seen.rows[f"Sentinel {WORKSPACE}"]
    assert mark == "✗" and "403" in detail and "AuthorizationFailed" in detail
    assert "Microsoft Sentinel Reader (polling) or Microsoft Sentinel Responder" in fix
    assert WORKSPACE in fix
    assert seen.mark(f"Azure Policy /subscriptions/{SUBSCRIPTION}") == "✓"


async def test_doctor_unknown_workspace_points_at_the_setting(world: World) -> None:
    """A workspace Sentinel does not have: ✗ naming WARDEN_SENTINEL_WORKSPACES, exit 1."""
    await world.migrate()
    await world.provision()
    missing = f"{SUBSCRIPTION}/{RESOURCE_GROUP}/no-such-workspace"
    seen = await doctor(world, WARDEN_SENTINEL_WORKSPACES=missing)
    assert seen.code == 1
    mark, detail, fix = seen.rows["Sentinel no-such-workspace"]
    assert mark == "✗" and "404" in detail
    assert "WARDEN_SENTINEL_WORKSPACES" in fix


async def test_doctor_unmigrated_database_says_run_db_upgrade(world: World) -> None:
    """A fresh SQLite file nobody upgraded, with auto-migration off (as replicas run): ✗ Store
    with "run python app.py db upgrade"; with it on (the default), ✓ saying Warden migrates it
    when it starts."""
    await world.provision()
    seen = await doctor(world, WARDEN_AUTO_MIGRATE="false")
    assert seen.code == 1
    mark, detail, fix = seen.rows["Store"]
    assert mark == "✗" and "no migrations applied" in detail
    assert fix.startswith("run `python app.py db upgrade`")
    assert summary_of(seen.output)[2] == 1, "only the store fails"
    seen = await doctor(world)
    mark, detail, _fix = seen.rows["Store"]
    assert mark == "✓" and "migrates it when it starts" in detail


async def test_doctor_malformed_webhook_secret_fails_configuration_naming_it(world: World) -> None:
    """A ServiceNow webhook secret without whsec_: ✗ Configuration naming the variable; the
    checks that need settings are not run, and nothing is called."""
    seen = await doctor(world, WARDEN_SERVICENOW__WEBHOOK_SECRETS="not-a-secret")
    assert seen.code == 1
    mark, detail, _ = seen.rows["Configuration"]
    assert mark == "✗" and "WARDEN_SERVICENOW__WEBHOOK_SECRETS" in detail and "whsec_" in detail
    assert seen.mark("ServiceNow") == seen.mark("Store") == "–"
    assert "not run: the configuration is invalid" in seen.rows["SharePoint"][1]
    assert world.snow.requests == [] and world.arm.calls() == []


async def test_doctor_unprovisioned_site_says_run_provision(world: World) -> None:
    """The site exists but has no library or lists: ✗ SharePoint with "run provision"."""
    await world.migrate()
    seen = await doctor(world)
    assert seen.code == 1
    mark, detail, fix = seen.rows["SharePoint"]
    assert mark == "✗" and "Evidence Requests" in detail and "Audit Log" in detail
    assert fix == "run `python app.py provision`"


async def test_doctor_servicenow_switched_off_is_skipped_without_a_call(world: World) -> None:
    """ServiceNow's flag off: – "off", and the sandbox saw no request at all; exit 0."""
    await world.migrate()
    await world.provision()
    seen = await doctor(world, WARDEN_CONNECTORS__SERVICENOW__ENABLED="false")
    assert seen.code == 0, seen.output
    mark, detail, _ = seen.rows["ServiceNow"]
    assert mark == "–" and detail.startswith("off (WARDEN_CONNECTORS__SERVICENOW__ENABLED")
    assert world.snow.requests == []


async def test_doctor_production_manifest_names_what_to_set(world: World) -> None:
    """Production mode without WARDEN_MANIFEST__PUBLIC_HOST: ✗ Teams manifest naming it;
    with it, ✓, and the bot identity row says it checked configuration only."""
    await world.migrate()
    await world.provision()
    production = {
        "WARDEN_MODE": "production",
        "MICROSOFT_APP_ID": "6f3c2a1e-5d4b-4c3a-9e8f-7a6b5c4d3e2f",
        "MICROSOFT_APP_PASSWORD": "bot-password-value",
        "WARDEN_ENCRYPTION_KEYS": generate_key(),
        "WARDEN_MANIFEST__WEBSITE_URL": "https://warden.contoso.com/help",
        "WARDEN_SERVICENOW__INSTANCE_URL": None,  # production refuses the sandbox's http
    }
    seen = await doctor(world, **production)
    assert seen.code == 1
    mark, detail, fix = seen.rows["Teams manifest"]
    assert mark == "✗" and "WARDEN_MANIFEST__PUBLIC_HOST: not set" in detail
    assert "manifest build" in fix
    assert seen.rows["Bot identity"][0] == "✓"
    assert "configuration only" in seen.rows["Bot identity"][1]
    assert "bot-password-value" not in seen.output

    fixed = await doctor(world, **production, WARDEN_MANIFEST__PUBLIC_HOST="warden.contoso.com")
    assert fixed.code == 0, fixed.output
    assert fixed.mark("Teams manifest") == "✓"


async def test_doctor_wrong_azure_secret_fails_every_azure_read_with_the_fix(
    world: World,
) -> None:
    """Entra ID refuses Warden's secret: Sentinel, Policy and SharePoint ✗ naming the
    AZURE_* variables; ServiceNow, which needs none of them, still ✓."""
    await world.migrate()
    await world.provision()
    seen = await doctor(world, AZURE_CLIENT_SECRET="sbx~wrong-secret-value")
    assert seen.code == 1
    azure = [f"Sentinel {WORKSPACE}", f"Azure Policy /subscriptions/{SUBSCRIPTION}", "SharePoint"]
    for name in azure:
        mark, _, fix = seen.rows[name]
        assert mark == "✗", name
        assert "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET" in fix, name
    assert seen.mark("ServiceNow") == "✓"
    assert "wrong-secret-value" not in seen.output
