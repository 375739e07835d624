"""Evidence requests from Azure Policy: the poller against the ARM sandbox's Policy Insights.

A running Warden (real app, botbuilder, outbox, store on SQLite and PostgreSQL) is installed
in the evidence channel; the poller under test reads Policy Insights over TLS with the real
``ClientSecretCredential`` and the resilient httpx layer, and its rounds are run directly
(``poll_once``). The owner's cards reach the Bot Connector sandbox through the outbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure.identity.aio import ClientSecretCredential

from app import STORE, WORKER
from bot.evidence import card_job, quarter
from connectors.http import RetryPolicy, resilient_client
from connectors.policy.client import PolicyInsightsClient
from connectors.policy.evidence_poller import EvidenceCards, PolicyEvidencePoller
from core.breaker import BreakerPolicy, Breakers
from core.catalog import load_catalog
from core.errors import SettingsError
from core.evidence import EvidenceRequest, RequestSource, RequestStatus
from core.settings import load_settings
from core.store import evidence as evidence_store
from core.store import outbox
from core.store.evidence_cards import EVIDENCE_CARD_JOB
from sandbox.arm import ArmSandbox, Fault, run_arm_sandbox
from tests.integration.conftest import Warden, WardenFactory
from tests.integration.reconcile_support import arm_settings
from tests.support import channel_id

SUB = "0b5d1c4e-7f3a-4f4e-9a51-2f7c5e1d9a10"
SCOPE = f"/subscriptions/{SUB}"
ASSIGNMENT = f"{SCOPE}/providers/Microsoft.Authorization/policyAssignments/secure-transfer"
DEFINITION = (
    "/providers/Microsoft.Authorization/policyDefinitions/404c3081-a854-4457-ae30-26a93ef643f9"
)
DISKS = "/providers/Microsoft.Authorization/policyDefinitions/06a78e20-9358-41c9-923c-fb736d382a4d"
OTHER = f"{SCOPE}/providers/Microsoft.Authorization/policyAssignments/allowed-locations"
REVIEWERS = "6f4c1b3e-2a8d-4b9e-9c1a-0d2e3f4a5b6c"
CATALOG = f"""\
requirements:
  - id: CIS-3.1
    title: Storage accounts require secure transfer
    guidance: Show the change that turned secure transfer on, or why it cannot be.
    policy_assignments: ["{ASSIGNMENT}"]
    policy_definitions: ["{DEFINITION}"]
    evidence: [link, attestation]
    owner: owner@contoso.com
    reviewers: ["{REVIEWERS}"]
    due_days: 30
  - id: CIS-7.2
    title: Virtual machines use managed disks
    guidance: The migration plan of each unmanaged disk.
    policy_definitions: ["{DISKS}"]
    evidence: [attestation]
    owner: owner@contoso.com
    reviewers: ["{REVIEWERS}"]
    due_days: 14
  - id: ISO-A.8.13
    title: Backups are tested
    guidance: A restore test report.
    evidence: [attestation]
    owner: owner@contoso.com
    reviewers: ["{REVIEWERS}"]
    due_days: 14
"""
FAST = RetryPolicy(attempts=3, timeout=5.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)
CHANNEL = channel_id("compliance")


def storage(name: str) -> str:
    """The resource id of a storage account in the polled subscription."""
    return f"{SCOPE}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/{name}"


def vm(name: str) -> str:
    """The resource id of a virtual machine in the polled subscription."""
    return f"{SCOPE}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/{name}"


def non_compliant(
    arm: ArmSandbox, resource: str, assignment: str = ASSIGNMENT, definition: str = DEFINITION
) -> None:
    """Azure Policy evaluates ``resource`` as NonCompliant under the assignment."""
    arm.policy.put(
        {
            "resourceId": resource,
            "policyAssignmentId": assignment,
            "policyDefinitionId": definition,
            "complianceState": "NonCompliant",
        }
    )


class Desk:
    """The poller under test, the Warden behind it and its evidence channel."""

    def __init__(self, warden: Warden, arm: ArmSandbox, poller: PolicyEvidencePoller) -> None:
        self.warden, self.arm, self.poller = warden, arm, poller
        self.store = warden.client.app[STORE]

    async def round(self) -> Any:
        """One poll round, then every card job it caused delivered."""
        report = await self.poller.poll_once()
        worker = self.warden.client.app[WORKER]

        async def idle() -> bool:  # audit.mirror jobs wait for SharePoint, not configured here
            jobs = await outbox.list_jobs(self.store, outbox.UNFINISHED)
            return not [job for job in jobs if job.kind == EVIDENCE_CARD_JOB]

        await worker.wait_until(idle)
        return report

    async def requests(self, requirement: str = "CIS-3.1") -> dict[str, EvidenceRequest]:
        """The requirement's requests by resource id."""
        found = await evidence_store.list_requests(self.store, requirement=requirement)
        return {r.scope: r for r in found}

    def owner_cards(self) -> list[Any]:
        """Owner's cards posted (not updated) in the evidence channel."""
        return [
            r
            for r in self.warden.connector.posts(CHANNEL, successful=True)
            if "Evidence requested: " in str(r.body)
        ]

    def card_of(self, resource: str) -> str:
        """The newest owner's card (posted or updated) that names ``resource``, as text."""
        shown = [
            str(r.body)
            for r in self.warden.connector.posts(CHANNEL, successful=True)
            + self.warden.connector.updates(CHANNEL, successful=True)
            if "Evidence requested: " in str(r.body) and resource in str(r.body)
        ]
        assert shown, f"no owner's card names {resource}"
        return shown[-1]


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox over TLS, without the examples' data, with pages of 2 policy states."""
    sandbox = ArmSandbox(policy_page_size=2, seed_examples=False)
    async with run_arm_sandbox(sandbox=sandbox) as served:
        yield served


@pytest.fixture
async def client(arm: ArmSandbox) -> AsyncIterator[PolicyInsightsClient]:
    """The Policy Insights client: real credential, resilient layer with fast retries."""
    breakers = Breakers(BreakerPolicy(min_calls=10_000))  # the retries are what is tested
    async with (
        ClientSecretCredential(
            arm.tenant_id,
            arm.client_id,
            arm.client_secret,
            authority=arm.authority,
            connection_verify=str(arm.ca_path),
        ) as credential,
        resilient_client(breakers=breakers, verify=arm.ssl_context(), policy=FAST) as http,
    ):
        yield PolicyInsightsClient(http, credential, base_url=arm.url)


def write_catalog(tmp_path: Path) -> Path:
    """The test catalog as a file."""
    catalog = tmp_path / "requirements.yaml"
    catalog.write_text(CATALOG, encoding="utf-8")
    return catalog


async def open_desk(
    tmp_path: Path,
    start_warden: WardenFactory,
    arm: ArmSandbox,
    client: PolicyInsightsClient,
    *,
    channel: str = CHANNEL,
    install: bool = True,
) -> Desk:
    """Warden with the catalog (installed in ``channel``), and a poller posting there."""
    catalog = write_catalog(tmp_path)
    warden = await start_warden(requirements_file=catalog)
    if install:
        await warden.install(channel)
    poller = PolicyEvidencePoller(
        client,
        warden.client.app[STORE],
        load_catalog(catalog),
        [SCOPE],
        period=quarter,
        cards=EvidenceCards(channel, card_job),
        on_change=warden.client.app[WORKER].wake,
    )
    return Desk(warden, arm, poller)


@pytest.fixture
async def desk(
    tmp_path: Path, start_warden: WardenFactory, arm: ArmSandbox, client: PolicyInsightsClient
) -> Desk:
    """Warden installed in the evidence channel, and a poller beside it."""
    return await open_desk(tmp_path, start_warden, arm, client)


async def test_poll_two_non_compliant_resources_open_two_requests_with_owner_cards(
    desk: Desk,
) -> None:
    """Two non-compliant storage accounts: two policy requests, two owner cards in the channel."""
    non_compliant(desk.arm, storage("stalpha"))
    non_compliant(desk.arm, storage("stbravo"))
    non_compliant(desk.arm, storage("stother"), assignment=OTHER, definition=DISKS + "x")
    report = await desk.round()
    assert (report.opened, report.resolved, report.failures) == (2, 0, 0)
    requests = await desk.requests()
    assert sorted(requests) == [storage("stalpha"), storage("stbravo")]
    for resource, request in requests.items():
        assert request.source is RequestSource.POLICY and request.status is RequestStatus.OPEN
        assert request.resources == (resource,) and request.requested_by == "warden"
        assert request.owner == "owner@contoso.com"
        assert request.period == quarter(datetime.now(UTC).date())
    assert len(desk.owner_cards()) == 2
    for resource in requests:
        card = desk.card_of(resource)
        assert "Storage accounts require secure transfer" in card
        assert "Waiting for evidence" in card and "Non-compliant resources" in card


async def test_poll_second_round_opens_nothing_new(desk: Desk) -> None:
    """A round over the same non-compliance opens no request and posts no card again."""
    non_compliant(desk.arm, storage("stalpha"))
    non_compliant(desk.arm, storage("stbravo"))
    await desk.round()
    again = await desk.round()
    assert (again.opened, again.resolved) == (0, 0)
    assert len(await desk.requests()) == 2
    assert len(desk.owner_cards()) == 2
    assert not desk.warden.connector.updates(CHANNEL, successful=True)


async def test_poll_more_states_than_a_page_opens_one_request_each(desk: Desk) -> None:
    """Seven states in pages of two: every page is read, one request per resource."""
    names = [f"st{n:02d}" for n in range(7)]
    for name in names:
        non_compliant(desk.arm, storage(name))
    report = await desk.round()
    assert report.opened == 7
    assert sorted(await desk.requests()) == sorted(storage(n) for n in names)
    first = desk.arm.calls("PolicyStates_ListQueryResultsForSubscription", successful=True)
    following = desk.arm.calls("PolicyStates_NextLink", successful=True)
    assert len(first) == 3  # CIS-3.1 by assignment and by definition, CIS-7.2 (none)
    assert len(following) == 3 + 3 and all("$skiptoken" in p.query for p in following)
    assert len(desk.owner_cards()) == 7


async def test_poll_resource_becomes_compliant_resolves_its_request_only(desk: Desk) -> None:
    """A resource now compliant: its request is resolved by policy, its card says so."""
    non_compliant(desk.arm, storage("stalpha"))
    non_compliant(desk.arm, storage("stbravo"))
    await desk.round()
    desk.arm.policy.set_compliance(storage("stalpha"), ASSIGNMENT, "Compliant")
    report = await desk.round()
    assert (report.opened, report.resolved) == (0, 1)
    requests = await desk.requests()
    assert requests[storage("stalpha")].status is RequestStatus.RESOLVED_BY_POLICY
    assert requests[storage("stbravo")].status is RequestStatus.OPEN
    resolved = desk.card_of(storage("stalpha"))
    assert "Resolved by policy" in resolved and "evidence.submit" not in resolved
    assert "Waiting for evidence" in desk.card_of(storage("stbravo"))
    assert len(desk.owner_cards()) == 2
    checked = desk.arm.calls("PolicyStates_ListQueryResultsForResource")
    assert [c.path.lower().startswith(storage("stalpha").lower()) for c in checked] == [True]
    quiet = await desk.round()
    assert (quiet.opened, quiet.resolved) == (0, 0)


async def test_poll_resource_non_compliant_again_opens_a_new_request(desk: Desk) -> None:
    """After a resolution by policy, the resource failing again opens a new request."""
    non_compliant(desk.arm, storage("stalpha"))
    await desk.round()
    desk.arm.policy.set_compliance(storage("stalpha"), ASSIGNMENT, "Compliant")
    await desk.round()
    desk.arm.policy.set_compliance(storage("stalpha"), ASSIGNMENT, "NonCompliant")
    report = await desk.round()
    assert report.opened == 1
    found = await evidence_store.list_requests(desk.store, requirement="CIS-3.1")
    assert [r.status for r in found] == [RequestStatus.RESOLVED_BY_POLICY, RequestStatus.OPEN]


async def test_poll_policy_insights_down_resolves_nothing_then_next_round_completes(
    desk: Desk,
) -> None:
    """503s on every read: nothing opened or resolved from absent answers; later, all is."""
    non_compliant(desk.arm, storage("stalpha"))
    non_compliant(desk.arm, vm("vm-web"), assignment=OTHER, definition=DISKS)
    await desk.round()
    desk.arm.policy.set_compliance(storage("stalpha"), ASSIGNMENT, "Compliant")
    desk.arm.policy.set_compliance(vm("vm-web"), OTHER, "Compliant")
    non_compliant(desk.arm, vm("vm-db"), assignment=OTHER, definition=DISKS)
    desk.arm.add_fault(Fault(status=503, times=None, path="policyStates"))
    down = await desk.round()
    assert (down.opened, down.resolved) == (0, 0) and down.failures == 3
    for requirement in ("CIS-3.1", "CIS-7.2"):
        shown = (await desk.requests(requirement)).values()
        assert [r.status for r in shown] == [RequestStatus.OPEN]
    desk.arm.clear_faults()
    back = await desk.round()
    assert (back.opened, back.resolved, back.failures) == (1, 2, 0)
    assert (await desk.requests())[storage("stalpha")].status is RequestStatus.RESOLVED_BY_POLICY
    disks = await desk.requests("CIS-7.2")
    assert disks[vm("vm-web")].status is RequestStatus.RESOLVED_BY_POLICY
    assert disks[vm("vm-db")].status is RequestStatus.OPEN


async def test_poll_one_read_fails_keeps_the_rounds_progress(desk: Desk) -> None:
    """The first read 503s (all its retries): the other reads still open their requests."""
    non_compliant(desk.arm, storage("stalpha"))
    non_compliant(desk.arm, vm("vm-web"), assignment=OTHER, definition=DISKS)
    desk.arm.add_fault(Fault(status=503, times=FAST.attempts, path="policyStates"))
    partial = await desk.round()
    assert partial.failures == 1 and partial.opened == 2  # found again by its definition
    assert list(await desk.requests("CIS-7.2")) == [vm("vm-web")]
    assert list(await desk.requests()) == [storage("stalpha")]
    complete = await desk.round()
    assert (complete.opened, complete.failures) == (0, 0)
    assert len(desk.owner_cards()) == 2


async def test_poll_requirement_without_policy_ids_is_never_polled(desk: Desk) -> None:
    """Only requirements naming policy ids are read; the others never get a policy request."""
    assert [r.id for r in desk.poller.requirements()] == ["CIS-3.1", "CIS-7.2"]
    non_compliant(desk.arm, storage("stalpha"))
    await desk.round()
    filters = [str(c.query.get("$filter", "")) for c in desk.arm.calls(service="arm")]
    asked = [f for f in filters if f]
    assert len(asked) == 3  # CIS-3.1 by assignment and definition, CIS-7.2 by definition
    assert all(ASSIGNMENT in f or DEFINITION in f or DISKS in f for f in asked)
    assert not await desk.requests("ISO-A.8.13")


async def test_poll_unknown_evidence_channel_opens_requests_without_cards(
    tmp_path: Path, start_warden: WardenFactory, arm: ArmSandbox, client: PolicyInsightsClient
) -> None:
    """An evidence channel Warden was never added to: requests open, no card is sent."""
    nowhere = channel_id("nowhere")
    desk = await open_desk(tmp_path, start_warden, arm, client, channel=nowhere, install=False)
    store, poller = desk.store, desk.poller
    non_compliant(arm, storage("stalpha"))
    assert (await poller.poll_once()).opened == 1
    jobs = await outbox.list_jobs(store)
    assert jobs and not [job for job in jobs if job.kind == EVIDENCE_CARD_JOB]


def _arm_settings(arm: ArmSandbox) -> dict[str, Any]:
    """Settings pointing Warden's ARM connection at the sandbox (no Sentinel polling)."""
    return {**arm_settings(arm), "sentinel_workspaces": []}


async def test_app_with_policy_scopes_polls_and_posts_owner_cards(
    tmp_path: Path, start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """Configured scopes, a catalog and a channel: Warden's own poller opens and posts."""
    catalog = write_catalog(tmp_path)
    first = await start_warden(requirements_file=catalog)
    await first.install(CHANNEL)
    await first.client.close()
    non_compliant(arm, storage("stalpha"))
    non_compliant(arm, storage("stbravo"))
    warden = await start_warden(
        requirements_file=catalog,
        policy_scopes=SCOPE,
        policy_poll_seconds=3600,
        evidence_channel=CHANNEL,
        **_arm_settings(arm),
    )

    def owner_cards(_: object) -> list[Any]:
        posts = warden.connector.posts(CHANNEL, successful=True)
        return [r for r in posts if "Evidence requested: " in str(r.body)]

    await warden.connector.wait_for(lambda s: len(owner_cards(s)) >= 2)
    found = await evidence_store.list_requests(warden.client.app[STORE])
    assert sorted(r.scope for r in found) == [storage("stalpha"), storage("stbravo")]


async def test_app_without_catalog_does_not_poll_policy(
    tmp_path: Path, start_warden: WardenFactory, arm: ArmSandbox
) -> None:
    """Scopes without a catalog: Warden starts and never reads Policy Insights."""
    non_compliant(arm, storage("stalpha"))
    warden = await start_warden(policy_scopes=SCOPE, **_arm_settings(arm))
    assert (await warden.client.get("/healthz")).status == 200
    assert not [c for c in arm.calls(service="arm") if "policyStates" in c.path]


def test_settings_bad_policy_scope_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scope that is not a subscription or resource group stops start-up, naming it."""
    monkeypatch.setenv("WARDEN_POLICY_SCOPES", f"{SCOPE},/subscriptions/nope")
    with pytest.raises(SettingsError, match=r"WARDEN_POLICY_SCOPES: .*'/subscriptions/nope'"):
        load_settings(var_dir=tmp_path)
