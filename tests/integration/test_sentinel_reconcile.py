"""The nightly full reconcile against the ARM sandbox: every open incident, resumably, once.

The real ``SentinelClient`` with azure-identity's ``ClientSecretCredential`` talks to the ARM
sandbox over TLS; incidents go through the real ``IngestWriter`` into a real store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
from azure.identity.aio import ClientSecretCredential
from sqlalchemy import text

from connectors.http import RetryPolicy, resilient_client
from connectors.sentinel.client import SentinelClient, Workspace
from connectors.sentinel.reconcile import (
    CHECKPOINT,
    ReconcileRun,
    SentinelReconciler,
    is_due,
    last_slot,
)
from core.breaker import Breakers
from core.crypto import PayloadCipher, generate_key
from core.ingest import IngestWriter
from core.metrics import Metrics
from core.store import checkpoints
from core.store.store import Store
from sandbox.arm import DEFAULT_SCOPE, ArmSandbox, run_arm_sandbox
from tests.integration.reconcile_support import OPEN_FILTER, make_incidents, open_keys, run_cli

FAST = RetryPolicy(attempts=3, timeout=5.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)
WORKSPACE = Workspace(
    DEFAULT_SCOPE.subscription, DEFAULT_SCOPE.resource_group, DEFAULT_SCOPE.workspace
)
STATUSES = ["New", "Active", "Closed", "New", "New", "Active", "Closed", "Active", "New", "New"]
AT = time(2, 30, tzinfo=UTC)


@dataclass
class Rig:
    """The sandbox, a store with its ingest writer, and a Sentinel client on the sandbox."""

    arm: ArmSandbox
    store: Store
    writer: IngestWriter
    client: SentinelClient
    database_url: str
    key: str

    def reconciler(self, **options: Any) -> SentinelReconciler:
        """A reconciler over the default workspace, in pages of 3 unless told."""
        options.setdefault("page_size", 3)
        return SentinelReconciler(self.client, [WORKSPACE], self.writer, self.store, **options)

    async def stored(self) -> dict[str, str]:
        """Every stored incident's key and version."""
        async with self.store.reading() as conn:
            rows = (await conn.execute(text('SELECT "key", version FROM incidents'))).all()
        return {str(row[0]): str(row[1]) for row in rows}

    def lists(self) -> list[Any]:
        """The Incidents_List requests the sandbox answered."""
        return self.arm.calls("Incidents_List")


@pytest.fixture
async def rig(database_url: str) -> AsyncIterator[Rig]:
    """The ARM sandbox over TLS, the real credential and client, a migrated store."""
    async with (
        run_arm_sandbox(sandbox=ArmSandbox(seed_examples=False)) as arm,
        ClientSecretCredential(
            arm.tenant_id,
            arm.client_id,
            arm.client_secret,
            authority=arm.authority,
            connection_verify=str(arm.ca_path),
        ) as credential,
        resilient_client(breakers=Breakers(), verify=arm.ssl_context(), policy=FAST) as http,
    ):
        key = generate_key()
        store = Store.from_url(database_url, cipher=PayloadCipher([key]))
        await store.upgrade()
        writer = IngestWriter(store, on_commit=lambda: None)
        await writer.start()
        client = SentinelClient(http, credential, base_url=arm.url)
        try:
            yield Rig(arm, store, writer, client, database_url, key)
        finally:
            await writer.stop()
            await store.close()


async def _stopped_after_first_page(rig: Rig) -> ReconcileRun:
    """Run a reconcile, cancel it once its first page is committed; the checkpointed run."""
    task: asyncio.Task[ReconcileRun]

    def cancel_after_first_page(run: ReconcileRun) -> None:
        if run.pages == 1:
            task.cancel()

    task = asyncio.create_task(rig.reconciler().run(progress=cancel_after_first_page))
    with pytest.raises(asyncio.CancelledError):
        await task
    saved = await rig.reconciler().current()
    assert saved is not None and saved.finished_at is None
    return saved


async def test_reconcile_several_pages_stores_every_open_incident_and_no_closed(
    rig: Rig,
) -> None:
    """Pages of 3 along nextLink store all 8 open incidents once; the 2 closed never."""
    make_incidents(rig.arm, STATUSES)
    run = await rig.reconciler().run()
    assert set(await rig.stored()) == open_keys(rig.arm) and len(open_keys(rig.arm)) == 8
    assert (run.pages, run.read, run.changed, run.workspace) == (3, 8, 8, 1)
    assert run.finished_at is not None and run.next_link is None
    first, *rest = rig.lists()
    assert first.query == {
        "api-version": "2025-12-01",
        "$filter": OPEN_FILTER,
        "$orderby": "properties/createdTimeUtc asc",
        "$top": "3",
    }
    assert len(rest) == 2 and all("$skipToken" in r.query for r in rest)
    saved = await checkpoints.load(rig.store, CHECKPOINT)
    assert saved is not None and ReconcileRun.model_validate_json(saved) == run


async def test_reconcile_cancelled_after_first_page_resumes_without_rereading_it(
    rig: Rig,
) -> None:
    """Stopped after page 1 and started again, it goes on from page 2: each incident read once."""
    make_incidents(rig.arm, STATUSES)
    stopped = await _stopped_after_first_page(rig)
    assert (stopped.pages, stopped.read) == (1, 3) and stopped.next_link is not None
    before = len(rig.lists())
    run = await rig.reconciler().run()
    resumed = rig.lists()[before:]
    assert resumed and all("$skipToken" in r.query for r in resumed)
    assert str(resumed[0].query["$skipToken"]) in stopped.next_link
    assert run.run_id == stopped.run_id and run.finished_at is not None
    assert (run.pages, run.read, run.changed) == (3, 8, 8)
    assert set(await rig.stored()) == open_keys(rig.arm)


async def test_reconcile_restart_flag_starts_a_new_run_from_page_one(rig: Rig) -> None:
    """``restart`` ignores an unfinished run and walks from the first page."""
    make_incidents(rig.arm, STATUSES)
    stopped = await _stopped_after_first_page(rig)
    before = len(rig.lists())
    run = await rig.reconciler().run(restart=True)
    assert "$skipToken" not in rig.lists()[before].query
    assert run.run_id != stopped.run_id and (run.read, run.changed) == (8, 5)


async def test_reconcile_expired_next_link_walks_the_workspace_again(rig: Rig) -> None:
    """A saved nextLink the service no longer knows (400) restarts that workspace, not the run."""
    make_incidents(rig.arm, STATUSES)
    stopped = await _stopped_after_first_page(rig)
    rig.arm.store.cursors.clear()  # as after a service restart: every skip token expired
    run = await rig.reconciler().run()
    refused = [r for r in rig.lists() if r.status == 400]
    assert len(refused) == 1 and "$skipToken" in refused[0].query
    assert run.run_id == stopped.run_id and run.finished_at is not None
    assert set(await rig.stored()) == open_keys(rig.arm)


async def test_reconcile_second_check_same_night_does_nothing_next_night_only_changes(
    rig: Rig,
) -> None:
    """Due once per night: the same night nothing; the next night only a changed one counts."""
    made = make_incidents(rig.arm, STATUSES)
    now = [datetime(2026, 3, 10, 3, 0, tzinfo=UTC)]
    metrics = Metrics()
    reconciler = rig.reconciler(clock=lambda: now[0], metrics=metrics)
    first = await reconciler.run_if_due(AT)
    assert first is not None and first.changed == 8
    calls = len(rig.lists())
    now[0] = datetime(2026, 3, 11, 2, 29, tzinfo=UTC)
    assert await reconciler.run_if_due(AT) is None
    assert len(rig.lists()) == calls
    rig.arm.portal_update(made[0]["name"], severity="Low")
    now[0] = datetime(2026, 3, 11, 2, 31, tzinfo=UTC)
    second = await reconciler.run_if_due(AT)
    assert second is not None and (second.read, second.changed) == (8, 1)
    assert second.run_id != first.run_id
    sample = metrics.registry.get_sample_value
    assert sample("warden_sentinel_reconcile_incidents_total", {"result": "changed"}) == 9
    assert sample("warden_sentinel_reconcile_incidents_total", {"result": "unchanged"}) == 7
    last = sample("warden_sentinel_reconcile_last_success_timestamp_seconds")
    assert last == now[0].timestamp()


async def test_reconcile_unknown_workspace_skipped_the_others_reconciled(rig: Rig) -> None:
    """A workspace ARM answers 404 for is skipped for the night; the next one is walked."""
    make_incidents(rig.arm, STATUSES[:4])
    missing = Workspace(WORKSPACE.subscription_id, WORKSPACE.resource_group, "gone-workspace")
    reconciler = SentinelReconciler(rig.client, [missing, WORKSPACE], rig.writer, rig.store)
    run = await reconciler.run()
    assert run.skipped == [0] and run.finished_at is not None and run.read == 3
    assert set(await rig.stored()) == open_keys(rig.arm)


async def test_cli_reconcile_resumes_a_run_stopped_in_another_process(
    rig: Rig, tmp_path: Path
) -> None:
    """`sentinel reconcile` picks up where a stopped run left off; page 1 is not read again."""
    make_incidents(rig.arm, STATUSES)
    stopped = await _stopped_after_first_page(rig)
    before = len(rig.lists())
    code, output = await run_cli(
        rig.arm, tmp_path, rig.database_url, "sentinel", "reconcile", keys=[rig.key]
    )
    assert code == 0, output
    assert f"resuming reconcile {stopped.run_id} after 1 page(s)" in output
    assert "finished: 8 open incident(s) read, 8 changed, in 3 page(s)" in output
    resumed = rig.lists()[before:]
    assert len(resumed) == 2 and all("$skipToken" in r.query for r in resumed)
    assert set(await rig.stored()) == open_keys(rig.arm)


def test_is_due_first_unfinished_or_before_the_last_slot() -> None:
    """Due without a run, for an unfinished run, and when the last finished before the slot."""
    now = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    assert last_slot(now, AT) == datetime(2026, 3, 9, 2, 30, tzinfo=UTC)
    begun = ReconcileRun(run_id="r", started_at=now, workspaces=[])
    finished = begun.model_copy(update={"finished_at": datetime(2026, 3, 9, 2, 45, tzinfo=UTC)})
    assert is_due(None, now, AT) and is_due(begun, now, AT)
    assert not is_due(finished, now, AT)
    assert is_due(finished, datetime(2026, 3, 10, 2, 30, tzinfo=UTC), AT)
