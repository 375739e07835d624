"""Contract tests: Warden's Defender XDR client (msgraph-sdk) against the Graph sandbox.

The real ``GraphServiceClient``, built by ``graph.client.graph_client`` over Warden's
resilient transport, with the real azure-identity credential against the ARM sandbox's
token endpoint, lists, reads, updates and comments on Graph security incidents.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from azure.identity.aio import ClientSecretCredential
from msgraph.generated.models.security.alert_classification import AlertClassification
from msgraph.generated.models.security.alert_determination import AlertDetermination
from msgraph.generated.models.security.incident import Incident as GraphIncident
from msgraph.generated.models.security.incident_status import IncidentStatus as GraphStatus

from core.breaker import Breakers
from core.errors import DeliveryError, Outcome
from core.models import IncidentSource, IncidentStatus, Severity
from graph.client import graph_client, graph_http
from graph.defender_mapping import incident_key
from graph.security import DefenderClient
from sandbox.arm import ArmSandbox, run_arm_sandbox
from sandbox.arm_tokens import ClientApp
from sandbox.graph import Fault, GraphSandbox, run_graph_sandbox

ROLES = ["SecurityIncident.ReadWrite.All", "SecurityAlert.Read.All"]
LONG_AGO = datetime(2000, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox (token endpoint, TLS CA) without incidents."""
    async with run_arm_sandbox(sandbox=ArmSandbox(seed_examples=False)) as served:
        yield served


@pytest.fixture
async def graph(arm: ArmSandbox) -> AsyncIterator[GraphSandbox]:
    """The Graph sandbox."""
    async with run_graph_sandbox(arm) as served:
        yield served


async def _client(
    arm: ArmSandbox, graph: GraphSandbox, roles: list[str]
) -> AsyncIterator[DefenderClient]:
    app = arm.register_client(f"warden-{len(roles)}", graph_roles=roles)
    async with ClientSecretCredential(
        arm.tenant_id,
        app.client_id,
        app.secret,
        authority=arm.authority,
        connection_verify=str(arm.ca_path),
    ) as credential:
        http = graph_http(Breakers(), arm.ssl_context())
        try:
            graph_service = graph_client(credential, http, base_url=graph.graph_url)
            yield DefenderClient(graph_service, page_size=2)
        finally:
            await http.aclose()


@pytest.fixture
async def client(arm: ArmSandbox, graph: GraphSandbox) -> AsyncIterator[DefenderClient]:
    """Warden's Defender client, as an app holding SecurityIncident.ReadWrite.All."""
    async for made in _client(arm, graph, ROLES):
        yield made


async def test_defender_client_list_pages_follows_next_links_reads_every_incident(
    client: DefenderClient, graph: GraphSandbox
) -> None:
    """Five incidents at two a page are read over three pages, each with its alerts."""
    seeded = graph.security.seed(5, random_seed=7)
    found = [i async for i in client.list_incidents(updated_since=LONG_AGO)]
    assert sorted(i.name for i in found) == sorted(s["id"] for s in seeded)
    assert all(i.source is IncidentSource.DEFENDER and i.alert_count >= 1 for i in found)
    assert all(i.key == incident_key(i.name) and i.xdr_id == i.name for i in found)
    pages = graph.calls("ListIncidents", successful=True)
    assert len(pages) == 3
    assert all(p.query.get("$expand") == "alerts" for p in pages)
    assert pages[0].query["$filter"].startswith("lastUpdateDateTime ge 2000-01-01T00:00:00")


async def test_defender_client_updated_since_later_skips_older_incidents(
    client: DefenderClient, graph: GraphSandbox, arm: ArmSandbox
) -> None:
    """Only incidents updated at or after the moment asked for are listed."""
    graph.security.add_incident({"displayName": "Old one"})
    arm.advance_clock(600)
    since = arm.now() - timedelta(seconds=1)
    graph.security.add_incident({"displayName": "New one"})
    found = [i.title async for i in client.list_incidents(updated_since=since)]
    assert found == ["New one"]


async def test_defender_client_throttled_list_honours_retry_after_then_reads(
    client: DefenderClient, graph: GraphSandbox
) -> None:
    """A 429 with Retry-After is waited out and the same page asked for again."""
    graph.security.add_incident({"displayName": "Throttled once"})
    graph.add_fault(Fault(status=429, retry_after=0.2, path="/v1.0/security/incidents"))
    found = [i.title async for i in client.list_incidents(updated_since=LONG_AGO)]
    assert found == ["Throttled once"]
    statuses = [c.status for c in graph.calls("ListIncidents")]
    assert statuses == [429, 200]
    assert graph.calls("ListIncidents")[1].time - graph.calls("ListIncidents")[0].time >= 0.2


async def test_defender_client_update_closes_with_classification_and_determination(
    client: DefenderClient, graph: GraphSandbox
) -> None:
    """A PATCH resolves the incident; the answer maps to Closed and FalsePositive."""
    made = graph.security.add_incident({"severity": "high"})
    body = GraphIncident(
        status=GraphStatus.Resolved,
        classification=AlertClassification.FalsePositive,
        determination=AlertDetermination.NotMalicious,
    )
    updated = await client.update_incident(made["id"], body)
    assert updated.status is IncidentStatus.CLOSED
    assert updated.classification == "FalsePositive"
    assert updated.severity is Severity.HIGH and updated.alert_count == len(made["alerts"])
    stored = graph.security.incidents[made["id"]].resource
    assert (stored["status"], stored["determination"]) == ("resolved", "notMalicious")
    patch = graph.calls("UpdateIncident")[0].body
    assert patch == {
        "classification": "falsePositive",
        "determination": "notMalicious",
        "status": "resolved",
    }


async def test_defender_client_comment_is_added_in_the_app_name(
    client: DefenderClient, graph: GraphSandbox
) -> None:
    """A comment lands on the incident, attributed to the app that wrote it."""
    made = graph.security.add_incident()
    await client.add_comment(made["id"], "Severity High → Medium by Ada via Teams")
    comments = graph.security.incidents[made["id"]].resource["comments"]
    assert [c["comment"] for c in comments] == ["Severity High → Medium by Ada via Teams"]
    assert comments[0]["createdByDisplayName"] == "Warden"


async def test_defender_client_read_only_incident_update_fails_without_retrying(
    client: DefenderClient, graph: GraphSandbox
) -> None:
    """A 403 on PATCH is final, sent once: retrying cannot change a refusal."""
    made = graph.security.add_incident()
    graph.security.incidents[made["id"]].read_only = True
    with pytest.raises(DeliveryError) as raised:
        await client.update_incident(made["id"], GraphIncident(status=GraphStatus.InProgress))
    assert raised.value.outcome in (Outcome.FAIL, Outcome.GONE) and raised.value.status == 403
    assert [c.status for c in graph.calls("UpdateIncident")] == [403]
    assert graph.security.incidents[made["id"]].resource["status"] == "active"


async def test_defender_client_unknown_incident_is_gone(client: DefenderClient) -> None:
    """Reading an incident Defender does not have answers GONE."""
    with pytest.raises(DeliveryError) as raised:
        await client.get_incident("999")
    assert raised.value.status == 404


async def test_defender_client_alerts_v2_lists_the_incident_alerts(
    client: DefenderClient, graph: GraphSandbox
) -> None:
    """``alerts_v2`` filtered by incident id answers that incident's alerts only."""
    first, second = graph.security.add_incident(), graph.security.add_incident()
    alerts = await client.list_alerts(first["id"])
    assert sorted(a.id or "" for a in alerts) == sorted(a["id"] for a in first["alerts"])
    assert all(a.incident_id == first["id"] for a in alerts)
    assert second["id"] not in {a.incident_id for a in alerts}


async def test_defender_client_without_write_role_is_refused(
    arm: ArmSandbox, graph: GraphSandbox
) -> None:
    """An app with the read role only may list but not update (403 from Graph)."""
    made = graph.security.add_incident()
    async for reader in _client(arm, graph, ["SecurityIncident.Read.All"]):
        assert [i.name async for i in reader.list_incidents(updated_since=LONG_AGO)] == [made["id"]]
        with pytest.raises(DeliveryError) as raised:
            await reader.add_comment(made["id"], "hello")
        assert raised.value.status == 403


async def test_graph_sandbox_update_refuses_determination_that_does_not_fit(
    arm: ArmSandbox, graph: GraphSandbox
) -> None:
    """The sandbox refuses what Graph refuses: a determination of another classification."""
    made = graph.security.add_incident()
    token = arm.issue_token("https://graph.microsoft.com", client_id=_app(arm).client_id)
    async with httpx.AsyncClient(verify=arm.ssl_context()) as http:
        answer = await http.patch(
            f"{graph.graph_url}/security/incidents/{made['id']}",
            json={"classification": "falsePositive", "determination": "phishing"},
            headers={"Authorization": f"Bearer {token}"},
        )
        severity = await http.patch(
            f"{graph.graph_url}/security/incidents/{made['id']}",
            json={"severity": "low"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "BadRequest"
    assert severity.status_code == 400


def _app(arm: ArmSandbox) -> ClientApp:
    return arm.register_client("warden-raw", graph_roles=ROLES)
