"""The nightly CMDB sync in a running Warden: scheduled, resumed, and visible to operators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app import CMDB_NIGHTLY
from connectors.resourcegraph.cmdb_sync import CmdbRun
from core.crypto import PayloadCipher, generate_key
from core.settings import Settings
from core.settings.cmdb import CmdbSettings
from core.store import cmdb_cis
from core.store.store import Store
from sandbox.arm import ArmSandbox, run_arm_sandbox
from tests.integration.conftest import WardenFactory
from tests.integration.reconcile_support import run_cli
from tests.integration.triage_support import connected_settings
from wiring.cmdb import nightly_sync, sync_now

KEY = generate_key()
RESOURCES = 250


class ProcessGone(BaseException):
    """The process running a sync went away (not an error the sync could record)."""


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox with 250 resources and a quota that does not get in the way."""
    sandbox = ArmSandbox(seed_examples=False)
    sandbox.resource_graph.seed(RESOURCES, random_seed=5)
    sandbox.resource_graph.quota.limit = 10_000
    async with run_arm_sandbox(sandbox=sandbox) as served:
        yield served


def nightly_settings(arm: ArmSandbox, **cmdb: Any) -> dict[str, Any]:
    """Settings overrides: the nightly sync on, checked every 50 ms, pages of 100."""
    options = {"nightly": True, "check_seconds": 0.05, "page_size": 100, **cmdb}
    return connected_settings(arm, cmdb=CmdbSettings(**options))


def metric(text: str, name: str) -> float:
    """The value of the sample ``name`` (with its labels) in a Prometheus exposition."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no sample {name}")


async def test_cmdb_nightly_first_run_stores_every_resource_and_reports_it(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """A Warden that never synced runs at once; /readyz and /metrics show the finished run."""
    warden = await start_warden(**nightly_settings(arm))
    await warden.client.app[CMDB_NIGHTLY].wait_for_ticks(1)
    ready = await (await warden.client.get("/readyz")).json()
    cmdb = ready["checks"]["cmdb"]
    assert (cmdb["state"], cmdb["run"], cmdb["read"]) == ("finished", 1, RESOURCES)
    assert cmdb["active"] == RESOURCES and 0 < cmdb["needing_tags"] < RESOURCES
    assert cmdb["error"] is None
    text = await (await warden.client.get("/metrics")).text()
    assert metric(text, "warden_cmdb_sync_last_success_timestamp_seconds") > 0
    assert metric(text, 'warden_cmdb_cis{state="active"}') == RESOURCES
    assert metric(text, 'warden_cmdb_sync_runs_total{outcome="finished"}') == 1
    await warden.client.app[CMDB_NIGHTLY].wait_for_ticks(3)
    assert len(arm.calls("Resources")) == 3, "a finished night ran again before its time"


async def test_cmdb_nightly_resumes_the_run_a_dead_replica_left(
    arm: ArmSandbox, database_url: str
) -> None:
    """A run stopped after page 1 (its process gone) is resumed by the next tick from its
    checkpoint: page 1 is not read again, every resource is stored once."""
    store = Store.from_url(database_url, cipher=PayloadCipher([KEY]))
    await store.upgrade()
    settings = Settings(**nightly_settings(arm), auto_migrate=False)

    def die_after_one(run: CmdbRun) -> None:
        if run.pages == 1:
            raise ProcessGone

    try:
        with pytest.raises(ProcessGone):
            await sync_now(settings, store, progress=die_after_one)
        arm.clear_requests()
        run = await nightly_sync(settings, store, None).tick()
        assert run is not None and (run.run, run.resumed, run.read) == (1, True, RESOURCES)
        assert arm.calls("Resources")[0].body["options"].get("$skipToken")
        assert (await cmdb_cis.counts(store))["active"] == RESOURCES
        assert await nightly_sync(settings, store, None).tick() is None  # done for tonight
    finally:
        await store.close()


async def test_cmdb_nightly_failed_run_is_reported_and_waits_before_resuming(
    start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """A refused query stops the night's run: /readyz says failed with Resource Graph's
    words, and the run is not sent again every check (it waits ``retry_seconds``)."""
    bad = nightly_settings(arm, query="Resources | summarize count()", retry_seconds=3600)
    warden = await start_warden(**bad)
    await warden.client.app[CMDB_NIGHTLY].wait_for_ticks(3)
    cmdb = (await (await warden.client.get("/readyz")).json())["checks"]["cmdb"]
    assert cmdb["state"] == "failed" and "summarize" in cmdb["error"]
    assert len(arm.calls("Resources")) == 1
    text = await (await warden.client.get("/metrics")).text()
    assert metric(text, 'warden_cmdb_sync_runs_total{outcome="failed"}') == 1


async def test_cmdb_status_command_shows_the_failed_run_and_its_reason(
    arm: ArmSandbox, database_url: str, tmp_path: Path
) -> None:
    """``cmdb status`` after a refused query: the run, 'failed' and Resource Graph's words."""
    store = Store.from_url(database_url, cipher=PayloadCipher([KEY]))
    await store.upgrade()
    bad = Settings(**nightly_settings(arm, query="Resources | summarize count()"))
    try:
        assert await nightly_sync(bad, store, None).tick() is None
    finally:
        await store.close()
    code, output = await run_cli(arm, tmp_path, database_url, "cmdb", "status", keys=[KEY])
    assert code == 0, output
    assert "CMDB sync 1: failed" in output and "summarize" in output
