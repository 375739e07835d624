"""SharePoint provisioning and the evidence operations against the Graph sandbox.

The real msgraph-sdk, over Warden's resilient httpx client, with the real azure-identity
credential from the ARM sandbox's token endpoint; what ends up in SharePoint is read back
through the sandbox's control API (``GET /_sandbox/state``) and its request log.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.identity.aio import ClientSecretCredential
from msgraph.graph_service_client import GraphServiceClient
from rich.console import Console

import graph.provision as provision_module
from connectors.http import RetryPolicy, resilient_client
from core.breaker import Breakers
from core.errors import DeliveryError, Outcome, SettingsError
from core.settings import Settings
from graph.client import graph_client, graph_http
from graph.provision import VIEWS_NOTE, ProvisionReport, Status, print_report, provision
from graph.sharepoint import (
    ListRef,
    SitePath,
    create_item,
    list_by_name,
    read_items,
    site_by_path,
    update_item_fields,
)
from sandbox.arm import ArmSandbox, run_arm_sandbox
from sandbox.graph import Fault, GraphSandbox, run_graph_sandbox
from sandbox.graph_store import Site

HOST = "contoso.sharepoint.com"
SITE = SitePath(HOST, "sites/Evidence")
ROLES = ["Sites.Manage.All"]
APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox: token endpoint and TLS CA."""
    async with run_arm_sandbox(sandbox=ArmSandbox(seed_examples=False)) as served:
        yield served


@pytest.fixture
async def graph(arm: ArmSandbox) -> AsyncIterator[GraphSandbox]:
    """The Graph sandbox with one empty site."""
    async with run_graph_sandbox(arm) as served:
        served.add_site(HOST, SITE.path)
        yield served


@pytest.fixture
def site(graph: GraphSandbox) -> Site:
    """The sandbox's Evidence site."""
    return graph.sharepoint.site_by_path(HOST, SITE.path)


@pytest.fixture
async def credential(arm: ArmSandbox) -> AsyncIterator[ClientSecretCredential]:
    """The real async credential of an app that may manage sites."""
    app = arm.register_client("warden-provision", graph_roles=ROLES)
    async with ClientSecretCredential(
        arm.tenant_id,
        app.client_id,
        app.secret,
        authority=arm.authority,
        connection_verify=str(arm.ca_path),
    ) as made:
        yield made


@pytest.fixture
def settings(graph: GraphSandbox, tmp_path: Path) -> Settings:
    """Settings pointing Warden's Graph at the sandbox and its site."""
    values: dict[str, Any] = {
        "var_dir": tmp_path,
        "graph_endpoint": graph.graph_url,
        "sharepoint_site": str(SITE),
    }
    return Settings(**values)


@pytest.fixture
async def client(
    arm: ArmSandbox, graph: GraphSandbox, credential: ClientSecretCredential
) -> AsyncIterator[GraphServiceClient]:
    """Warden's GraphServiceClient over the resilient transport, at the sandbox."""
    async with graph_http(Breakers(), arm.ssl_context()) as http:
        yield graph_client(credential, http, base_url=graph.graph_url)


async def run(
    settings: Settings, credential: ClientSecretCredential, arm: ArmSandbox
) -> ProvisionReport:
    """Provision the site of ``settings``; the report."""
    return await provision(settings, credential, verify=arm.ssl_context())


async def state_lists(graph: GraphSandbox, arm: ArmSandbox) -> dict[str, dict[str, Any]]:
    """The site's lists by display name, as the control API shows them."""
    async with httpx.AsyncClient(verify=arm.ssl_context()) as raw:
        state = (await raw.get(f"{graph.url}/_sandbox/state")).json()
    [site] = state["sites"]
    return {entry["display_name"]: entry for entry in site["lists"]}


def columns(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A listed list's columns by name."""
    return {column["name"]: column for column in entry["columns"]}


def statuses(report: ProvisionReport, display_name: str) -> dict[str, Status]:
    """The column statuses of one list of a report."""
    [entry] = [e for e in report.lists if e.display_name == display_name]
    return {column.name: column.status for column in entry.columns}


# Provisioning.


async def test_provision_empty_site_creates_library_and_lists_with_columns(
    settings: Settings, credential: ClientSecretCredential, arm: ArmSandbox, graph: GraphSandbox
) -> None:
    """From an empty site: the Evidence library and both lists, each with all its columns."""
    report = await run(settings, credential, arm)
    assert [(e.display_name, e.status) for e in report.lists] == [
        ("Evidence", Status.CREATED),
        ("Evidence Requests", Status.CREATED),
        ("Audit Log", Status.CREATED),
    ]
    assert report.changed and not report.problems
    lists = await state_lists(graph, arm)
    assert lists["Evidence"]["template"] == "documentLibrary" and lists["Evidence"]["drive_id"]
    evidence = columns(lists["Evidence"])
    assert evidence["Decision"]["kind"] == "choice"
    assert evidence["Decision"]["choices"] == [
        "Pending",
        "Approved",
        "Rejected",
        "ChangesRequested",
    ]
    assert evidence["EvidenceType"]["choices"] == ["File", "Link", "Attestation"]
    assert evidence["DecidedAtUtc"]["kind"] == "dateTime"
    assert {"RequirementId", "RequestId", "Sha256", "SubmittedBy", "DecidedBy", "PolicyId"} <= set(
        evidence
    )
    requests = columns(lists["Evidence Requests"])
    assert lists["Evidence Requests"]["template"] == "genericList"
    assert requests["Approvals"]["kind"] == "number" and requests["DueUtc"]["kind"] == "dateTime"
    assert requests["Status"]["kind"] == "choice"
    assert {"RequestId", "RequirementId", "Title", "Owner", "Period"} <= set(requests)
    audit = columns(lists["Audit Log"])
    assert audit["Seq"]["kind"] == "number" and audit["AtUtc"]["kind"] == "dateTime"
    assert {"Actor", "Action", "RequestId", "RequirementId", "Details", "PrevHash", "Hash"} <= set(
        audit
    )


async def test_provision_second_run_reports_exists_and_changes_nothing(
    settings: Settings, credential: ClientSecretCredential, arm: ArmSandbox, graph: GraphSandbox
) -> None:
    """Run twice: the second report says "exists" everywhere and sends no write."""
    await run(settings, credential, arm)
    before = await state_lists(graph, arm)
    graph.clear_requests()
    report = await run(settings, credential, arm)
    assert not report.changed and not report.problems
    assert {e.status for e in report.lists} == {Status.EXISTS}
    assert {c.status for e in report.lists for c in e.columns} == {Status.EXISTS}
    assert {entry.method for entry in graph.calls()} == {"GET"}
    assert await state_lists(graph, arm) == before


async def test_provision_list_missing_column_gets_it_added(
    settings: Settings,
    credential: ClientSecretCredential,
    arm: ArmSandbox,
    graph: GraphSandbox,
    site: Site,
) -> None:
    """An Audit Log without Hash and Details keeps its columns and gains the missing two."""
    body: dict[str, Any] = {
        "displayName": "Audit Log",
        "columns": [
            {"name": name, "text": {}}
            for name in ("Actor", "Action", "RequestId", "RequirementId", "PrevHash")
        ]
        + [{"name": "Seq", "number": {}}, {"name": "AtUtc", "dateTime": {}}],
    }
    graph.sharepoint.add_list(site, body)
    report = await run(settings, credential, arm)
    [audit] = [e for e in report.lists if e.display_name == "Audit Log"]
    assert audit.status is Status.UPDATED
    assert statuses(report, "Audit Log") == {
        "Seq": Status.EXISTS,
        "AtUtc": Status.EXISTS,
        "Actor": Status.EXISTS,
        "Action": Status.EXISTS,
        "RequestId": Status.EXISTS,
        "RequirementId": Status.EXISTS,
        "Details": Status.ADDED,
        "PrevHash": Status.EXISTS,
        "Hash": Status.ADDED,
    }
    stored = columns((await state_lists(graph, arm))["Audit Log"])
    assert stored["Hash"]["kind"] == "text" and stored["Details"]["kind"] == "text"


async def test_provision_incompatible_column_is_reported_not_changed(
    settings: Settings,
    credential: ClientSecretCredential,
    arm: ArmSandbox,
    graph: GraphSandbox,
    site: Site,
) -> None:
    """Approvals as text, a Status lacking choices, an Owner named otherwise: reported only."""
    body: dict[str, Any] = {
        "displayName": "Evidence Requests",
        "columns": [
            {"name": "Approvals", "text": {}},
            {"name": "Owner0", "displayName": "Owner", "text": {}},
            {"name": "Status", "choice": {"choices": ["Open", "Closed"]}},
        ],
    }
    graph.sharepoint.add_list(site, body)
    report = await run(settings, credential, arm)
    found = statuses(report, "Evidence Requests")
    assert found["Approvals"] is Status.INCOMPATIBLE and found["Status"] is Status.INCOMPATIBLE
    assert found["Owner"] is Status.INCOMPATIBLE and found["Period"] is Status.ADDED
    assert "Evidence Requests/Owner: is named Owner0 inside SharePoint, needs Owner" in (
        report.problems
    )
    assert "Evidence Requests/Approvals: is text, needs number" in report.problems
    assert any(
        p.startswith("Evidence Requests/Status: lacks choices Submitted") for p in report.problems
    )
    stored = columns((await state_lists(graph, arm))["Evidence Requests"])
    assert stored["Approvals"]["kind"] == "text"
    assert stored["Status"]["choices"] == ["Open", "Closed"]


async def test_provision_list_where_library_belongs_is_reported(
    settings: Settings,
    credential: ClientSecretCredential,
    arm: ArmSandbox,
    graph: GraphSandbox,
    site: Site,
) -> None:
    """A generic list named Evidence is reported, not replaced by a library."""
    graph.sharepoint.add_list(site, {"displayName": "Evidence"})
    report = await run(settings, credential, arm)
    [evidence] = [e for e in report.lists if e.display_name == "Evidence"]
    assert evidence.status is Status.INCOMPATIBLE and not evidence.columns
    assert report.problems == ["Evidence: is a genericList, needs a documentLibrary"]
    assert (await state_lists(graph, arm))["Evidence"]["template"] == "genericList"


async def test_provision_without_site_setting_raises_settings_error(
    credential: ClientSecretCredential, arm: ArmSandbox, graph: GraphSandbox, tmp_path: Path
) -> None:
    """Without WARDEN_SHAREPOINT_SITE provisioning stops naming the variable."""
    values: dict[str, Any] = {"var_dir": tmp_path, "graph_endpoint": graph.graph_url}
    bare = Settings(**values)
    with pytest.raises(SettingsError, match="WARDEN_SHAREPOINT_SITE"):
        await run(bare, credential, arm)


async def test_provision_unknown_site_raises_delivery_error_gone(
    settings: Settings, credential: ClientSecretCredential, arm: ArmSandbox
) -> None:
    """A site that does not exist is Graph's 404: DeliveryError GONE, nothing created."""
    other = settings.model_copy(update={"sharepoint_site": f"{HOST}:/sites/Nope"})
    with pytest.raises(DeliveryError) as raised:
        await run(other, credential, arm)
    assert raised.value.outcome is Outcome.GONE and raised.value.status == 404
    assert "itemNotFound" in str(raised.value)


async def test_print_report_shows_statuses_and_views_note(
    settings: Settings, credential: ClientSecretCredential, arm: ArmSandbox
) -> None:
    """The printed report lists each list and column with its status, and the views note."""
    await run(settings, credential, arm)
    console = Console(record=True, width=200)
    print_report(await run(settings, credential, arm), console)
    text = console.export_text()
    assert "Evidence Requests" in text and "Nothing to change." in text
    assert "exists" in text and "created" not in text
    assert VIEWS_NOTE.split(":")[0] in text


# Evidence operations.


async def evidence_requests(client: GraphServiceClient) -> ListRef:
    """Provisioned Evidence Requests list of the site."""
    found = await site_by_path(client, SITE)
    made = await list_by_name(client, found.id or "", "evidence requests")
    assert made is not None
    return ListRef(found.id or "", made.id or "")


async def test_update_item_fields_concurrent_change_rereads_and_reapplies(
    settings: Settings,
    credential: ClientSecretCredential,
    arm: ArmSandbox,
    graph: GraphSandbox,
    site: Site,
    client: GraphServiceClient,
) -> None:
    """A write between read and PATCH makes If-Match fail (412); the change is redone on it."""
    await run(settings, credential, arm)
    ref = await evidence_requests(client)
    item = await create_item(client, ref, {"RequestId": "REQ-1", "Approvals": 0})
    stored = graph.sharepoint.site(site.id).lists[ref.list_id]
    seen: list[Mapping[str, Any]] = []

    def approve(fields: Mapping[str, Any]) -> dict[str, Any]:
        """Add one approval; the first time, a colleague approves just before we write."""
        seen.append(dict(fields))
        if len(seen) == 1:
            graph.sharepoint.update_fields(
                stored, stored.items[int(item.id)], {"Approvals": 1}, None
            )
        return {"Approvals": fields["Approvals"] + 1}

    updated = await update_item_fields(client, ref, item.id, approve)
    assert [f["Approvals"] for f in seen] == [0, 1]
    assert updated.fields["Approvals"] == 2 and stored.items[int(item.id)].fields["Approvals"] == 2
    patches = [e.status for e in graph.calls("sites") if e.method == "PATCH"]
    assert patches == [412, 200]


async def test_update_item_fields_always_stale_gives_up_with_retry_outcome(
    settings: Settings,
    credential: ClientSecretCredential,
    arm: ArmSandbox,
    graph: GraphSandbox,
    site: Site,
    client: GraphServiceClient,
) -> None:
    """Changed by someone else every round: DeliveryError RETRY 412 after ``rounds`` tries."""
    await run(settings, credential, arm)
    ref = await evidence_requests(client)
    item = await create_item(client, ref, {"RequestId": "REQ-2", "Approvals": 0})
    stored = graph.sharepoint.site(site.id).lists[ref.list_id]

    def contended(fields: Mapping[str, Any]) -> dict[str, Any]:
        """Someone always writes first."""
        graph.sharepoint.update_fields(stored, stored.items[int(item.id)], {"Owner": "x"}, None)
        return {"Approvals": 5}

    with pytest.raises(DeliveryError) as raised:
        await update_item_fields(client, ref, item.id, contended, rounds=2)
    assert raised.value.outcome is Outcome.RETRY and raised.value.status == 412
    assert stored.items[int(item.id)].fields["Approvals"] == 0


async def test_update_item_fields_nothing_to_change_sends_no_patch(
    settings: Settings,
    credential: ClientSecretCredential,
    arm: ArmSandbox,
    graph: GraphSandbox,
    client: GraphServiceClient,
) -> None:
    """A change function with nothing to write returns the item as read, without a PATCH."""
    await run(settings, credential, arm)
    ref = await evidence_requests(client)
    item = await create_item(client, ref, {"RequestId": "REQ-3", "Status": "Approved"})
    same = await update_item_fields(client, ref, item.id, lambda fields: None)
    assert same.fields["Status"] == "Approved" and same.etag == item.etag
    assert not [e for e in graph.calls("sites") if e.method == "PATCH"]


async def test_read_items_follows_next_link_across_pages(
    settings: Settings,
    credential: ClientSecretCredential,
    arm: ArmSandbox,
    graph: GraphSandbox,
    client: GraphServiceClient,
) -> None:
    """Five items read two per page: three pages, every item once, fields included."""
    await run(settings, credential, arm)
    ref = await evidence_requests(client)
    for number in range(5):
        await create_item(client, ref, {"RequestId": f"REQ-{number}"})
    graph.clear_requests()
    found = [item.fields["RequestId"] async for item in read_items(client, ref, page_size=2)]
    assert found == [f"REQ-{n}" for n in range(5)]
    assert len(graph.calls("sites")) == 3


async def test_create_item_unknown_field_raises_delivery_error_fail(
    settings: Settings,
    credential: ClientSecretCredential,
    arm: ArmSandbox,
    client: GraphServiceClient,
) -> None:
    """Graph's 400 for an unknown field becomes DeliveryError FAIL (not retried)."""
    await run(settings, credential, arm)
    ref = await evidence_requests(client)
    with pytest.raises(DeliveryError) as raised:
        await create_item(client, ref, {"Nope": "x"})
    assert raised.value.outcome is Outcome.FAIL and raised.value.status == 400
    assert str(raised.value) == "Graph create item answered 400 invalidRequest"


async def test_site_lookup_throttled_once_is_retried_after_retry_after(
    graph: GraphSandbox, client: GraphServiceClient, site: Site
) -> None:
    """A 429 with Retry-After: 1 is waited out and resent by the transport; the SDK sees 200."""
    graph.add_fault(Fault(status=429, retry_after=1, method="GET", path="/sites/", times=1))
    found = await site_by_path(client, SITE)
    assert found.id == site.id
    first, second = graph.calls("sites")
    assert (first.status, first.fault, second.status) == (429, "status", 200)
    assert second.time - first.time >= 0.9


async def test_throttled_beyond_retries_raises_rate_limited_with_retry_after(
    arm: ArmSandbox, graph: GraphSandbox, credential: ClientSecretCredential
) -> None:
    """Still throttled when the attempts run out: DeliveryError RATE_LIMITED with its delay."""
    graph.add_fault(Fault(status=429, retry_after=0, method="GET", path="/sites/", times=None))
    policy = RetryPolicy(attempts=2, timeout=5.0)
    async with resilient_client(
        breakers=Breakers(), policy=policy, verify=arm.ssl_context()
    ) as http:
        limited = graph_client(credential, http, base_url=graph.graph_url)
        with pytest.raises(DeliveryError) as raised:
            await site_by_path(limited, SITE)
    assert raised.value.outcome is Outcome.RATE_LIMITED and raised.value.status == 429
    assert raised.value.retry_after == 0.0
    assert len(graph.calls("sites")) == 2


async def test_provision_list_created_meanwhile_409_is_checked_not_failed(
    settings: Settings,
    credential: ClientSecretCredential,
    arm: ArmSandbox,
    graph: GraphSandbox,
    site: Site,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A list made by someone else after our lookup: Graph's 409, then it is checked as found."""
    graph.sharepoint.add_list(site, {"displayName": "Audit Log"})
    real = list_by_name
    looked: list[str] = []

    async def late(client: GraphServiceClient, site_id: str, name: str) -> Any:
        """The first lookup of Audit Log misses it, as if it were created just after."""
        looked.append(name)
        if looked.count("Audit Log") == 1 and name == "Audit Log":
            return None
        return await real(client, site_id, name)

    monkeypatch.setattr(provision_module, "list_by_name", late)
    report = await run(settings, credential, arm)
    [audit] = [e for e in report.lists if e.display_name == "Audit Log"]
    assert audit.status is Status.UPDATED and looked.count("Audit Log") == 2
    assert statuses(report, "Audit Log")["Hash"] is Status.ADDED
    posts = [
        e.status for e in graph.calls("sites") if e.method == "POST" and e.path.endswith("/lists")
    ]
    assert posts == [201, 201, 409]


async def test_provision_command_creates_then_reports_nothing_to_do(
    arm: ArmSandbox, graph: GraphSandbox, tmp_path: Path
) -> None:
    """`python app.py provision` with the settings in the environment: the first run creates
    the library and lists, the second changes nothing; both exit 0."""
    app = arm.register_client("warden-cli", graph_roles=ROLES)
    env = {
        **os.environ,
        "WARDEN_VAR_DIR": str(tmp_path),
        "WARDEN_GRAPH_ENDPOINT": graph.graph_url,
        "WARDEN_SHAREPOINT_SITE": str(SITE),
        "WARDEN_ARM_CA_BUNDLE": str(arm.ca_path),
        "AZURE_TENANT_ID": arm.tenant_id,
        "AZURE_CLIENT_ID": app.client_id,
        "AZURE_CLIENT_SECRET": app.secret,
        "AZURE_AUTHORITY_HOST": arm.authority,
    }
    outputs = []
    for _ in range(2):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            APP,
            "provision",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        assert process.returncode == 0, out.decode()
        outputs.append(out.decode())
    assert "Evidence Requests" in outputs[0] and "Audit Log" in outputs[0]
    lists = await state_lists(graph, arm)
    assert {"Evidence", "Evidence Requests", "Audit Log"} <= set(lists)
