"""Contract tests: ``DeploymentsClient`` against the ARM sandbox, over TLS, with real SDKs.

The real ``azure.identity.aio.ClientSecretCredential`` gets tokens from the sandbox's Entra
ID; the resilient httpx layer carries every call. Every request the client sent is checked
against the deployments operations (GET, api-version 2024-03-01, the swagger's operation ids).
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator

import pytest
from azure.identity.aio import ClientSecretCredential

from connectors.arm_deployments.client import DeploymentsClient
from connectors.arm_deployments.errors import DeploymentNotFound, DeploymentsThrottled
from connectors.arm_deployments.mapping import deployment_from_resource
from connectors.http import RetryPolicy, resilient_client
from core.breaker import Breakers
from sandbox.arm import ArmSandbox, Fault, run_arm_sandbox
from sandbox.arm_deployments import first_alert

FAST = RetryPolicy(attempts=3, timeout=10.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)
OPERATIONS = {"Deployments_ListByResourceGroup", "Deployments_Get", "DeploymentOperations_List"}


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox over TLS with 120 resources and 30 deployments in each of their groups."""
    sandbox = ArmSandbox(seed_examples=False)
    sandbox.resource_graph.seed(120, random_seed=5)
    sandbox.deployments.seed(sandbox.resource_graph.rows.values(), per_group=30, random_seed=5)
    sandbox.deployments.page_size = 7
    async with run_arm_sandbox(sandbox=sandbox) as served:
        yield served
        for entry in served.calls(service="arm"):
            assert entry.operation in OPERATIONS, entry.summary()
            assert entry.method == "GET" and entry.query["api-version"] == "2024-03-01"


@pytest.fixture
async def client(arm: ArmSandbox) -> AsyncIterator[DeploymentsClient]:
    """The client with the real credential and the resilient layer, trusting the sandbox CA."""
    async with (
        ClientSecretCredential(
            arm.tenant_id,
            arm.client_id,
            arm.client_secret,
            authority=arm.authority,
            connection_verify=str(arm.ca_path),
        ) as credential,
        resilient_client(breakers=Breakers(), verify=arm.ssl_context(), policy=FAST) as http,
    ):
        yield DeploymentsClient(http, credential, base_url=arm.url)


def _a_group(arm: ArmSandbox) -> str:
    """The id of a seeded resource group, spelled as ARM spells it."""
    row = next(iter(arm.resource_graph.rows.values()))
    return str(row["id"]).split("/providers/")[0]


async def test_deployments_list_pages_every_deployment_once_newest_first(
    arm: ArmSandbox, client: DeploymentsClient
) -> None:
    """Pages of 7 along nextLink walk all 30 of a group's deployments once, newest first."""
    group = _a_group(arm)
    items = [item async for item in client.list_raw(group, top=7)]
    names = [item["name"] for item in items]
    assert len(names) == 30 == len(set(names))
    times = [deployment_from_resource(item).timestamp for item in items]
    assert times == sorted(times, reverse=True)
    pages = arm.calls("Deployments_ListByResourceGroup")
    assert len(pages) == 5 and pages[0].query.get("$top") == "7"
    assert all("$skipToken" in page.query for page in pages[1:])


async def test_deployments_get_reads_the_resources_its_operations_touched(
    arm: ArmSandbox, client: DeploymentsClient
) -> None:
    """A deployment read by name carries the targets of its operations, lower-cased."""
    group = _a_group(arm)
    stored = next(iter(arm.deployments.groups[group.lower()].values()))
    found = await client.get(group, stored.resource["name"])
    assert found.name == stored.resource["name"]
    assert set(found.targets) == {t.lower() for t in stored.targets}
    assert found.resource_group == group.lower()
    assert found.timestamp.tzinfo is not None
    assert arm.calls("DeploymentOperations_List")


async def test_deployments_unknown_name_raises_not_found_with_arm_code(
    arm: ArmSandbox, client: DeploymentsClient
) -> None:
    """A name the group lacks is ARM's 404 DeploymentNotFound, typed."""
    with pytest.raises(DeploymentNotFound) as caught:
        await client.get(_a_group(arm), "no-such-deployment")
    assert caught.value.status == 404 and caught.value.code == "DeploymentNotFound"


async def test_deployments_throttled_once_is_retried_after_retry_after(
    arm: ArmSandbox, client: DeploymentsClient
) -> None:
    """One 429 with Retry-After is waited out by the resilient layer; the list completes."""
    arm.add_fault(Fault(status=429, retry_after=0.05, times=1))
    items = [item async for item in client.list_raw(_a_group(arm), top=30)]
    assert len(items) == 30
    statuses = [entry.status for entry in arm.calls("Deployments_ListByResourceGroup")]
    assert statuses == [429, 200]


async def test_deployments_throttled_beyond_retries_raises_throttled(
    arm: ArmSandbox, client: DeploymentsClient
) -> None:
    """A 429 that never ends raises the typed throttling error with ARM's delay."""
    arm.add_fault(Fault(status=429, retry_after=0.01, times=10))
    with pytest.raises(DeploymentsThrottled) as caught:
        _ = [item async for item in client.list_raw(_a_group(arm))]
    assert caught.value.status == 429


async def test_deployments_before_an_incident_sit_minutes_before_its_first_alert(
    arm: ArmSandbox, client: DeploymentsClient
) -> None:
    """Seeding against incidents names a resource on each and deploys it before the first alert."""
    arm.seed(3, random_seed=9)
    added = arm.seed_deployments(per_group=1, random_seed=9)
    assert added >= 3
    for stored in arm.workspace().incidents.values():
        named = [e for e in stored.entities if e["kind"] == "AzureResource"]
        assert len(named) == 1
        resource_id = named[0]["properties"]["resourceId"]
        group = resource_id.split("/providers/")[0]
        items = [deployment_from_resource(i) async for i in client.list_raw(group, top=100)]
        first = first_alert(stored)
        before = [
            d
            for d in items
            if resource_id.lower() in d.targets
            and datetime.timedelta(minutes=3) <= first - d.timestamp <= datetime.timedelta(hours=2)
        ]
        assert before, resource_id
