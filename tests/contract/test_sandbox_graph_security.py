"""Contract tests: the Graph sandbox's security routes and Warden's Defender client, held to
``contracts/msgraph-v1.0-security-subset.openapi.yaml``.

Every answer the sandbox gives on the paths Warden uses (List incidents with ``$expand=alerts``
and paging, Get, Update, Create comment, List alerts_v2, and the 400/403/404/429 errors) is
validated against the response schema the contract names for that operation; the bodies
Warden's real ``DefenderClient`` sends (PATCH, comment) are taken from the sandbox's request
log and validated against the operation's request schema.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft7Validator
from msgraph.generated.models.security.alert_classification import AlertClassification
from msgraph.generated.models.security.alert_determination import AlertDetermination
from msgraph.generated.models.security.incident import Incident as GraphIncident
from msgraph.generated.models.security.incident_status import IncidentStatus as GraphStatus

from graph.security import DefenderClient
from sandbox.arm import ArmSandbox
from sandbox.graph import Fault, GraphSandbox
from tests.contract import test_defender_client as defender
from tests.contract.test_sandbox_graph import _openapi_to_jsonschema

CONTRACT = yaml.safe_load(
    (
        Path(__file__).resolve().parents[2]
        / "contracts"
        / "msgraph-v1.0-security-subset.openapi.yaml"
    ).read_text()
)
COMPONENTS = _openapi_to_jsonschema(CONTRACT["components"])
INCIDENTS = "/security/incidents"
INCIDENT = "/security/incidents/{incident-id}"
COMMENTS = "/security/incidents/{incident-id}/comments"
ALERTS = "/security/alerts_v2"
GRAPH = "https://graph.microsoft.com"


def _schema_ref(node: dict[str, Any]) -> str:
    """The ``#/components/schemas/...`` reference of a request body or response object."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = CONTRACT["components"]["responses"][name]
    ref: str = node["content"]["application/json"]["schema"]["$ref"]
    return ref


def _validate(ref: str, body: object) -> None:
    Draft7Validator({"$ref": ref, "components": copy.deepcopy(COMPONENTS)}).validate(body)


def assert_response(path: str, method: str, body: object, *, status: str = "2XX") -> None:
    """Assert ``body`` matches the contract's response schema for this operation and status."""
    responses = CONTRACT["paths"][path][method]["responses"]
    _validate(_schema_ref(responses[status if status in responses else "default"]), body)


def assert_request(path: str, method: str, body: object) -> None:
    """Assert ``body`` matches the contract's request body schema for this operation."""
    _validate(_schema_ref(CONTRACT["paths"][path][method]["requestBody"]), body)


def assert_error(answer: httpx.Response, path: str, method: str, status: int, code: str) -> None:
    """Assert an OData error answer, valid against the operation's ``default`` response."""
    assert answer.status_code == status, answer.text
    assert_response(path, method, answer.json(), status="default")
    assert answer.json()["error"]["code"] == code


arm = defender.arm
"""The ARM sandbox without incidents (the Defender client tests' fixture)."""
graph = defender.graph
"""The Graph sandbox: the Defender client tests' fixture."""


@pytest.fixture
async def http(arm: ArmSandbox, graph: GraphSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """httpx with a token of an app holding the security roles, based at ``/v1.0/``."""
    app = arm.register_client("warden-security-raw", graph_roles=defender.ROLES)
    bearer = {"Authorization": f"Bearer {arm.issue_token(GRAPH, client_id=app.client_id)}"}
    base = f"{graph.graph_url}/"
    async with httpx.AsyncClient(base_url=base, verify=arm.ssl_context(), headers=bearer) as raw:
        yield raw


@pytest.fixture
async def client(arm: ArmSandbox, graph: GraphSandbox) -> AsyncIterator[DefenderClient]:
    """Warden's Defender client (real msgraph-sdk and azure-identity) on the sandbox."""
    async for made in defender._client(arm, graph, defender.ROLES):
        yield made


async def test_security_list_incidents_expanded_pages_match_contract(
    http: httpx.AsyncClient, graph: GraphSandbox
) -> None:
    """Every page of List incidents with $expand=alerts is an incidentCollectionResponse."""
    graph.security.seed(5, random_seed=3)
    query = {"$filter": "lastUpdateDateTime ge 2000-01-01T00:00:00Z", "$expand": "alerts"}
    answer = await http.get("security/incidents", params={**query, "$top": "2"})
    pages = []
    while True:
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        assert_response(INCIDENTS, "get", answer.json())
        if not answer.json().get("@odata.nextLink"):
            break
        answer = await http.get(answer.json()["@odata.nextLink"])
    incidents = [incident for page in pages for incident in page["value"]]
    assert len(pages) == 3 and len(incidents) == 5
    assert all(incident["alerts"] for incident in incidents)


async def test_security_get_incident_with_and_without_alerts_matches_contract(
    http: httpx.AsyncClient, graph: GraphSandbox
) -> None:
    """Get incident answers a security.incident, with alerts only when expanded."""
    made = graph.security.add_incident()
    plain = await http.get(f"security/incidents/{made['id']}")
    expanded = await http.get(f"security/incidents/{made['id']}", params={"$expand": "alerts"})
    for answer in (plain, expanded):
        assert answer.status_code == 200, answer.text
        assert_response(INCIDENT, "get", answer.json())
    assert "alerts" not in plain.json() and len(expanded.json()["alerts"]) == len(made["alerts"])


async def test_security_update_request_and_answer_match_contract(
    client: DefenderClient, http: httpx.AsyncClient, graph: GraphSandbox
) -> None:
    """The PATCH Warden sends is an incident body; the answer is the updated incident."""
    made = graph.security.add_incident()
    await client.update_incident(
        made["id"],
        GraphIncident(
            status=GraphStatus.Resolved,
            assigned_to="ada@contoso.com",
            classification=AlertClassification.TruePositive,
            determination=AlertDetermination.Phishing,
            custom_tags=["warden"],
        ),
    )
    sent = graph.calls("UpdateIncident", successful=True)[0].body
    assert_request(INCIDENT, "patch", sent)
    assert sent["customTags"] == ["warden"] and sent["assignedTo"] == "ada@contoso.com"
    again = await http.patch(f"security/incidents/{made['id']}", json={"status": "inProgress"})
    assert again.status_code == 200, again.text
    assert_response(INCIDENT, "patch", again.json())
    assert again.json()["status"] == "inProgress"


async def test_security_comment_request_and_answer_match_contract(
    client: DefenderClient, http: httpx.AsyncClient, graph: GraphSandbox
) -> None:
    """The comment Warden sends is an alertComment; the answer is the comment collection."""
    made = graph.security.add_incident()
    await client.add_comment(made["id"], "Assigned to Ada via Teams")
    sent = graph.calls("CreateIncidentComment", successful=True)[0].body
    assert_request(COMMENTS, "post", sent)
    assert sent["@odata.type"] == "#microsoft.graph.security.alertComment"
    answer = await http.post(
        f"security/incidents/{made['id']}/comments",
        json={"@odata.type": "#microsoft.graph.security.alertComment", "comment": "Second"},
    )
    assert answer.status_code == 200, answer.text
    assert_response(COMMENTS, "post", answer.json())
    assert [c["comment"] for c in answer.json()["value"]] == ["Assigned to Ada via Teams", "Second"]
    incident = await http.get(f"security/incidents/{made['id']}")
    assert_response(INCIDENT, "get", incident.json())


async def test_security_alerts_v2_list_matches_contract(
    client: DefenderClient, http: httpx.AsyncClient, graph: GraphSandbox
) -> None:
    """List alerts_v2 filtered by incident answers an alertCollectionResponse."""
    made = graph.security.add_incident()
    answer = await http.get(
        "security/alerts_v2", params={"$filter": f"incidentId eq '{made['id']}'"}
    )
    assert answer.status_code == 200, answer.text
    assert_response(ALERTS, "get", answer.json())
    assert {a["id"] for a in answer.json()["value"]} == {a["id"] for a in made["alerts"]}
    assert [a.id for a in await client.list_alerts(made["id"])]


async def test_security_bad_requests_answer_contract_errors(
    http: httpx.AsyncClient, graph: GraphSandbox
) -> None:
    """400s (paging, filter, expansion, PATCH body, empty comment) are OData errors."""
    made = graph.security.add_incident()
    target = f"security/incidents/{made['id']}"
    for params in ({"$top": "0"}, {"$filter": "severity eq 'high'"}, {"$expand": "comments"}):
        assert_error(
            await http.get("security/incidents", params=params), INCIDENTS, "get", 400, "BadRequest"
        )
    for body in ({"severity": "low"}, {"status": "closed"}, {}):
        assert_error(await http.patch(target, json=body), INCIDENT, "patch", 400, "BadRequest")
    empty = await http.post(f"{target}/comments", json={"comment": " "})
    assert_error(empty, COMMENTS, "post", 400, "BadRequest")


async def test_security_refusals_and_unknown_incident_answer_contract_errors(
    arm: ArmSandbox, http: httpx.AsyncClient, graph: GraphSandbox
) -> None:
    """403 (read-only incident, read-only app) and 404 (unknown incident) are OData errors."""
    made = graph.security.add_incident()
    graph.security.incidents[made["id"]].read_only = True
    target = f"security/incidents/{made['id']}"
    refused = await http.patch(target, json={"status": "inProgress"})
    assert_error(refused, INCIDENT, "patch", 403, "Forbidden")
    silenced = await http.post(f"{target}/comments", json={"comment": "hello"})
    assert_error(silenced, COMMENTS, "post", 403, "Forbidden")
    reader = arm.register_client("warden-reader", graph_roles=["SecurityIncident.Read.All"])
    token = arm.issue_token(GRAPH, client_id=reader.client_id)
    no_role = await http.patch(
        target, json={"status": "inProgress"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert no_role.status_code == 403
    assert_response(INCIDENT, "patch", no_role.json(), status="default")
    assert_error(await http.get("security/incidents/999"), INCIDENT, "get", 404, "NotFound")


async def test_security_throttled_list_answers_contract_error_with_retry_after(
    http: httpx.AsyncClient, graph: GraphSandbox
) -> None:
    """A 429 is an OData error with Retry-After in seconds."""
    graph.add_fault(Fault(status=429, retry_after=3, path="/v1.0/security/incidents"))
    answer = await http.get("security/incidents", params={"$expand": "alerts"})
    assert_error(answer, INCIDENTS, "get", 429, "TooManyRequests")
    assert answer.headers["Retry-After"] == "3"
