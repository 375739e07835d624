"""Contract tests: ``ResourceGraphClient`` against the ARM sandbox, over TLS, with real SDKs.

The real ``azure.identity.aio.ClientSecretCredential`` gets tokens from the sandbox's
Entra ID; the resilient httpx layer carries every call. Every query the client sent is
checked against the Resource Graph request shape (api-version 2022-10-01, a QueryRequest
body with ``resultFormat`` objectArray).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from azure.identity.aio import ClientSecretCredential

from connectors.http import RetryPolicy, resilient_client
from connectors.resourcegraph.client import ResourceGraphClient
from connectors.resourcegraph.errors import ResourceGraphQueryError, ResourceGraphThrottled
from core.breaker import Breakers
from sandbox.arm import ArmSandbox, Fault, RequestRecord, run_arm_sandbox

FAST = RetryPolicy(attempts=3, timeout=10.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)
QUERY = "Resources | project id, name, type, tags | order by id asc"
_BODY_KEYS = {"query", "subscriptions", "options", "managementGroups", "facets"}
_OPTION_KEYS = {"$top", "$skip", "$skipToken", "resultFormat", "allowPartialScopes"}


def assert_query_request(entry: RequestRecord) -> None:
    """Assert that one logged request is a Resources query as the service declares it."""
    assert entry.operation == "Resources", entry.summary()
    assert entry.method == "POST" and entry.query == {"api-version": "2022-10-01"}
    assert set(entry.body) <= _BODY_KEYS and isinstance(entry.body["query"], str)
    assert set(entry.body["options"]) <= _OPTION_KEYS
    assert entry.body["options"]["resultFormat"] == "objectArray"


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox over TLS with 250 seeded resources and a generous quota."""
    sandbox = ArmSandbox(seed_examples=False)
    sandbox.resource_graph.seed(250, random_seed=3)
    sandbox.resource_graph.quota.limit = 1000
    async with run_arm_sandbox(sandbox=sandbox) as served:
        yield served
        for entry in served.calls(service="arm"):
            assert_query_request(entry)


@pytest.fixture
async def client(arm: ArmSandbox) -> AsyncIterator[ResourceGraphClient]:
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
        yield ResourceGraphClient(http, credential, base_url=arm.url)


async def test_resourcegraph_pages_every_resource_once_along_skip_tokens(
    arm: ArmSandbox, client: ResourceGraphClient
) -> None:
    """Pages of 100 walk all 250 resources once; each later page sends the token it was given."""
    pages = [page async for page in client.pages(QUERY, top=100)]
    ids = [row["id"] for page in pages for row in page.rows]
    assert [len(page.rows) for page in pages] == [100, 100, 50]
    assert sorted(ids) == sorted(row["id"] for row in arm.resource_graph.rows.values())
    assert len(set(ids)) == 250 and pages[0].total == 250
    sent = [entry.body["options"].get("$skipToken") for entry in arm.calls("Resources")]
    assert sent == [None, pages[0].skip_token, pages[1].skip_token]
    assert pages[-1].skip_token is None


async def test_resourcegraph_subscriptions_scope_only_their_resources(
    arm: ArmSandbox, client: ResourceGraphClient
) -> None:
    """Naming one subscription returns its resources only, with its total."""
    one = next(iter(arm.resource_graph.rows.values()))["subscriptionId"]
    page = await client.page(QUERY, subscriptions=[one], top=1000)
    expected = [r for r in arm.resource_graph.rows.values() if r["subscriptionId"] == one]
    assert page.total == len(expected) == len(page.rows)
    assert {row["id"] for row in page.rows} == {row["id"] for row in expected}


async def test_resourcegraph_kql_error_carries_the_service_message(
    client: ResourceGraphClient,
) -> None:
    """A query the service cannot parse raises with its details: the token and position."""
    with pytest.raises(ResourceGraphQueryError) as caught:
        await client.page("Resources | wher type == 'x'")
    error = caught.value
    assert error.status == 400 and error.code == "BadRequest"
    assert "Query is invalid" in str(error)
    assert "unexpected token 'wher'" in str(error) and "position 12" in str(error)
    assert "correlationId" in str(error)
    assert "unexpected token 'wher'" in error.user_message


async def test_resourcegraph_unknown_column_names_it(client: ResourceGraphClient) -> None:
    """A query naming a column the table lacks says which one."""
    with pytest.raises(ResourceGraphQueryError, match="named 'owner'"):
        await client.page("Resources | project id, owner")


async def test_resourcegraph_spent_quota_waits_for_the_reset_not_a_429(
    arm: ArmSandbox, client: ResourceGraphClient
) -> None:
    """With 2 queries per second, the third page waits for the window: never a 429."""
    arm.resource_graph.quota.limit, arm.resource_graph.quota.window = 2, 1.0
    started = time.monotonic()
    pages = [page async for page in client.pages(QUERY, top=100)]
    assert len(pages) == 3
    statuses = [entry.status for entry in arm.calls("Resources")]
    assert statuses == [200, 200, 200]
    times = [entry.time for entry in arm.calls("Resources")]
    assert times[2] - times[0] >= 0.9 and time.monotonic() - started < 5


async def test_resourcegraph_throttled_query_is_sent_again_after_the_reset(
    arm: ArmSandbox, client: ResourceGraphClient
) -> None:
    """A 429 with a spent quota is waited out (its resets-after), then the page comes."""
    arm.resource_graph.quota.limit, arm.resource_graph.quota.window = 1, 1.0
    await client.page(QUERY, top=10)
    client.quota.remaining = None  # as if another process had spent the quota
    page = await client.page(QUERY, top=10)
    assert len(page.rows) == 10
    assert [e.status for e in arm.calls("Resources")] == [200, 429, 200]


async def test_resourcegraph_throttled_past_the_limit_raises_throttled(
    arm: ArmSandbox, client: ResourceGraphClient
) -> None:
    """A 429 that keeps coming ends as ``ResourceGraphThrottled`` once the waits allowed end."""
    arm.add_fault(Fault(status=429, retry_after=0, times=None, path="ResourceGraph"))
    impatient = ResourceGraphClient(
        client._http, client._tokens._credential, base_url=arm.url, max_throttled=1
    )
    with pytest.raises(ResourceGraphThrottled) as caught:
        await impatient.page(QUERY)
    assert caught.value.status == 429
    assert len(arm.calls("Resources")) >= 2


def test_resourcegraph_http_base_url_refused_before_any_request() -> None:
    """A client for an http URL is refused at once (the bearer token would travel in clear)."""
    with pytest.raises(ValueError, match="https"):
        ResourceGraphClient(httpx.AsyncClient(), None, base_url="http://example.test")  # type: ignore[arg-type]
