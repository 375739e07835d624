"""The CMDB sync: Azure resources from the Resource Graph sandbox into the store and ServiceNow.

Warden's sync runs against the ARM sandbox (Resource Graph, real credential over TLS) and
the ServiceNow sandbox (Table API, basic auth), with the store on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.resourcegraph.cmdb_sync import CmdbRun
from connectors.resourcegraph.errors import ResourceGraphQueryError
from core.crypto import PayloadCipher, generate_key
from core.settings import Settings
from core.settings.cmdb import CmdbSettings
from core.settings.servicenow import ServiceNowSettings
from core.store import cmdb_cis
from core.store.store import Store
from sandbox.arm import ArmSandbox, Fault, run_arm_sandbox
from sandbox.servicenow import ServiceNowSandbox, run_servicenow_sandbox
from tests.integration.triage_support import connected_settings
from wiring.cmdb import sync_now

ROOT = Path(__file__).resolve().parents[2]
KEY = generate_key()
RESOURCES = 300


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox with 300 realistic resources and a quota that does not get in the way."""
    sandbox = ArmSandbox(seed_examples=False)
    sandbox.resource_graph.seed(RESOURCES, random_seed=11)
    sandbox.resource_graph.quota.limit = 10_000
    async with run_arm_sandbox(sandbox=sandbox) as served:
        yield served


@pytest.fixture
async def snow() -> AsyncIterator[ServiceNowSandbox]:
    """The ServiceNow sandbox with its seeded CMDB."""
    async with run_servicenow_sandbox() as sandbox:
        yield sandbox


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A migrated store."""
    opened = Store.from_url(database_url, cipher=PayloadCipher([KEY]))
    await opened.upgrade()
    try:
        yield opened
    finally:
        await opened.close()


def settings_for(arm: ArmSandbox, snow: ServiceNowSandbox | None = None, **cmdb: Any) -> Settings:
    """Settings that sync from the ARM sandbox in pages of 100 (into ServiceNow if given)."""
    more: dict[str, Any] = {"cmdb": CmdbSettings(page_size=100, **cmdb)}
    if snow is not None:
        more["servicenow"] = ServiceNowSettings(
            instance_url=snow.url, username=snow.username, password=SecretStr(snow.password)
        )
        more["cmdb"] = CmdbSettings(page_size=100, servicenow_sync=True, **cmdb)
    return Settings(**connected_settings(arm, auto_migrate=False, **more))


def azure_cis(snow: ServiceNowSandbox) -> list[dict[str, Any]]:
    """The ServiceNow CIs that carry an Azure resource id."""
    return [
        r
        for r in snow.records("cmdb_ci")
        if str(r.get("correlation_id", "")).startswith("/subscriptions/")
    ]


async def test_cmdb_sync_pages_every_resource_into_the_store(arm: ArmSandbox, store: Store) -> None:
    """Three pages store all 300 resources once, owner/env from tags, untagged ones flagged."""
    run = await sync_now(settings_for(arm), store)
    assert (run.run, run.pages, run.read, run.total) == (1, 3, RESOURCES, RESOURCES)
    assert run.finished_at is not None
    stored = {s.item.ci_id: s for s in await cmdb_cis.cis(store)}
    rows = arm.resource_graph.rows.values()
    assert set(stored) == {row["id"].lower() for row in rows}
    for row in rows:
        found = stored[row["id"].lower()]
        tags = {k.lower(): v for k, v in (row["tags"] or {}).items()}
        assert found.item.owner == (tags.get("owner") or None)
        assert found.item.env == (tags.get("environment") or tags.get("env") or None)
        assert found.needs_tags == (found.item.owner is None or found.item.env is None)
    counts = await cmdb_cis.counts(store)
    assert counts["active"] == RESOURCES and 0 < counts["needing_tags"] < RESOURCES


async def test_cmdb_sync_upserts_servicenow_exactly_once_per_resource(
    arm: ArmSandbox, snow: ServiceNowSandbox, store: Store
) -> None:
    """Two runs leave one ServiceNow CI per resource; a changed tag updates it in place."""
    settings = settings_for(arm, snow)
    await sync_now(settings, store)
    first = {r["correlation_id"]: r["sys_id"] for r in azure_cis(snow)}
    assert len(first) == RESOURCES == len(azure_cis(snow))
    row = next(r for r in arm.resource_graph.rows.values() if r["type"].endswith("machines"))
    arm.resource_graph.put({**row, "tags": {"owner": "Adele Vance", "env": "Production"}})
    await sync_now(settings, store)
    second = {r["correlation_id"]: r for r in azure_cis(snow)}
    assert {k: r["sys_id"] for k, r in second.items()} == first
    changed = second[row["id"].lower()]
    assert changed["environment"] == "Production"
    assert changed["sys_class_name"] == "cmdb_ci_vm_instance"


async def test_cmdb_sync_owner_becomes_owned_by_only_for_exactly_one_user(
    arm: ArmSandbox, snow: ServiceNowSandbox, store: Store
) -> None:
    """An owner tag that is a user's e-mail (any case) or user name sets ``owned_by`` to that
    user; a display name or a team matches no one: left empty, and the run counts it."""
    run = await sync_now(settings_for(arm, snow), store)
    users = {
        key.lower(): user["sys_id"]
        for user in snow.records("sys_user")
        for key in (user["email"], user["user_name"])
        if key
    }
    owners = {s.item.ci_id: s.item.owner for s in await cmdb_cis.cis(store)}
    unknown = set()
    for record in azure_cis(snow):
        owner = (owners[record["correlation_id"]] or "").lower()
        assert record["owned_by"] == users.get(owner, ""), owner
        if owner and owner not in users:
            unknown.add(owner)
    assert {"adele vance", "team-platform"} <= unknown
    assert any(r["owned_by"] for r in azure_cis(snow))
    assert run.owners_unresolved == len(unknown)


async def test_cmdb_sync_adopts_an_existing_ci_with_the_resource_id(
    arm: ArmSandbox, snow: ServiceNowSandbox, store: Store
) -> None:
    """A CI already carrying the resource id (any case) is updated, never duplicated."""
    row = next(iter(arm.resource_graph.rows.values()))
    existing = snow.create("cmdb_ci", {"name": "legacy", "correlation_id": row["id"].upper()})
    await sync_now(settings_for(arm, snow), store)
    carrying = [
        r for r in snow.records("cmdb_ci") if r["correlation_id"].lower() == row["id"].lower()
    ]
    assert [r["sys_id"] for r in carrying] == [existing["sys_id"]]
    assert carrying[0]["name"] == row["name"]


async def test_cmdb_sync_retires_a_resource_unseen_for_n_runs(
    arm: ArmSandbox, snow: ServiceNowSandbox, store: Store
) -> None:
    """A deleted resource is kept, marked retired after 2 runs without it, here and there."""
    settings = settings_for(arm, snow, retire_after_runs=2)
    await sync_now(settings, store)
    gone = next(iter(arm.resource_graph.rows.values()))["id"]
    arm.resource_graph.remove(gone)
    run = await sync_now(settings, store)
    [kept] = await cmdb_cis.cis(store, ids=[gone.lower()])
    assert kept.retired_at is None and run.retired == 0
    run = await sync_now(settings, store)
    [retired] = await cmdb_cis.cis(store, ids=[gone.lower()])
    assert retired.retired_at is not None and run.retired == 1
    record = next(r for r in azure_cis(snow) if r["correlation_id"] == gone.lower())
    assert (record["install_status"], record["operational_status"]) == ("7", "6")
    counts = await cmdb_cis.counts(store)
    assert counts == {**counts, "active": RESOURCES - 1, "retired": 1}


async def test_cmdb_sync_kql_error_stops_the_run_with_the_service_message(
    arm: ArmSandbox, store: Store
) -> None:
    """A bad query stops the run with Resource Graph's words; nothing is stored."""
    settings = settings_for(arm, query="Resources | summarize count()")
    with pytest.raises(ResourceGraphQueryError, match="unexpected token 'summarize'"):
        await sync_now(settings, store)
    assert await cmdb_cis.cis(store) == []


async def test_cmdb_sync_resume_continues_after_the_last_stored_page(
    arm: ArmSandbox, snow: ServiceNowSandbox, store: Store
) -> None:
    """A run refused on page 3 resumes there: pages 1-2 are not read again, no duplicate CI."""
    settings = settings_for(arm, snow)
    seen: list[CmdbRun] = []

    def fail_after_two(run: CmdbRun) -> None:
        seen.append(run)
        if run.pages == 1:  # page 2 is already being read ahead: page 3 is refused
            arm.add_fault(Fault(status=400, code="BadRequest", times=1, path="ResourceGraph"))

    with pytest.raises(ResourceGraphQueryError):
        await sync_now(settings, store, progress=fail_after_two)
    stopped = seen[-1]
    assert stopped.pages == 2 and stopped.finished_at is None
    assert len(await cmdb_cis.cis(store)) == 200
    arm.clear_requests()
    run = await sync_now(settings, store, resume=True)
    assert run.run == 1 and run.pages == 3 and run.read == RESOURCES and run.resumed
    assert [c.body["options"].get("$skipToken") for c in arm.calls("Resources")] == [
        stopped.skip_token
    ]
    assert len(azure_cis(snow)) == RESOURCES


async def test_cmdb_sync_killed_mid_run_resumes_without_duplicates(
    arm: ArmSandbox, snow: ServiceNowSandbox, database_url: str, tmp_path: Path
) -> None:
    """``cmdb sync`` SIGKILLed after page 2 is resumed by ``cmdb sync --resume``: every
    resource once in the store and once in ServiceNow, the pages before the kill not read."""
    arm.add_fault(Fault(delay=0.3, times=None, path="ResourceGraph"))
    env = {
        **os.environ,
        "WARDEN_DATABASE_URL": database_url,
        "WARDEN_VAR_DIR": str(tmp_path),
        "WARDEN_ENCRYPTION_KEYS": KEY,
        "WARDEN_ARM_ENDPOINT": arm.url,
        "WARDEN_ARM_CA_BUNDLE": str(arm.ca_path),
        "AZURE_TENANT_ID": arm.tenant_id,
        "AZURE_CLIENT_ID": arm.client_id,
        "AZURE_CLIENT_SECRET": arm.client_secret,
        "AZURE_AUTHORITY_HOST": arm.authority,
        "WARDEN_SERVICENOW__INSTANCE_URL": snow.url,
        "WARDEN_SERVICENOW__USERNAME": snow.username,
        "WARDEN_SERVICENOW__PASSWORD": snow.password,
        "WARDEN_CMDB__SERVICENOW_SYNC": "true",
        "WARDEN_CMDB__PAGE_SIZE": "50",
    }
    command = [sys.executable, "app.py", "cmdb", "sync"]
    proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child process, not a call
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await arm.wait_for(lambda a: len(a.calls("Resources", successful=True)) >= 3, 60)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=20)
    assert proc.returncode == -signal.SIGKILL
    arm.clear_requests()
    arm.clear_faults()
    resumed = await asyncio.to_thread(
        subprocess.run, [*command, "--resume"], cwd=ROOT, env=env, capture_output=True
    )
    assert resumed.returncode == 0, resumed.stdout.decode() + resumed.stderr.decode()
    assert b"resuming CMDB sync 1" in resumed.stdout
    first = arm.calls("Resources")[0].body["options"]
    assert first.get("$skipToken"), "the resumed run read page 1 again"
    store = Store.from_url(database_url, cipher=PayloadCipher([KEY]))
    try:
        assert len(await cmdb_cis.cis(store)) == RESOURCES
    finally:
        await store.close()
    ids = [r["correlation_id"] for r in azure_cis(snow)]
    assert len(ids) == len(set(ids)) == RESOURCES
    assert b"need tags" in resumed.stdout
