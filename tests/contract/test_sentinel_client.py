"""Contract tests: ``SentinelClient`` against the ARM sandbox, over TLS, with real SDKs.

The real ``azure.identity.aio.ClientSecretCredential`` gets tokens from the sandbox's
Entra ID; the resilient httpx layer (``connectors.http``) carries every call. After each
test, every ARM request the client sent is checked against the swagger in ``contracts/``
(operation, api-version, query parameters, path parameters, body schema, no readOnly
property, no null), with validators built here from the contract.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.identity.aio import ClientSecretCredential
from jsonschema import Draft4Validator, FormatChecker

from connectors.http import RetryPolicy, resilient_client
from connectors.sentinel.client import ARM_SCOPE, SentinelClient, Workspace
from connectors.sentinel.errors import (
    IncidentConflict,
    IncidentNotFound,
    InvalidIncidentChange,
    SentinelError,
    SentinelRefused,
    SentinelThrottled,
    SentinelUnavailable,
)
from connectors.sentinel.mapping import IncidentChanges, incident_put_body
from core.breaker import Breakers
from core.errors import DeliveryError, Outcome
from core.models import IncidentStatus, Owner, Severity
from sandbox.arm import DEFAULT_SCOPE, ArmSandbox, Fault, RequestRecord, run_arm_sandbox
from sandbox.arm_odata import parse_instant
from sandbox.arm_seed import EXAMPLE_SCOPE

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
SWAGGER = json.loads((CONTRACTS / "azure-sentinel-incidents-2025-12-01.swagger.json").read_text())
DEFINITIONS = SWAGGER["definitions"]
EXAMPLES = CONTRACTS / "examples" / "azure-sentinel-2025-12-01"
API_VERSION = "2025-12-01"
WORKSPACE = Workspace(
    DEFAULT_SCOPE.subscription, DEFAULT_SCOPE.resource_group, DEFAULT_SCOPE.workspace
)
EXAMPLE_WORKSPACE = Workspace(
    EXAMPLE_SCOPE.subscription, EXAMPLE_SCOPE.resource_group, EXAMPLE_SCOPE.workspace
)
EXAMPLE_ID = "73e01a99-5cd7-4139-a149-9f2736ff2ab5"
ALERTS_ID = "afbd324f-6c48-459c-8710-8d1e1cd03812"
JOHN = "2046feea-040d-4a46-9e2b-91c2941bfa70"
FAST = RetryPolicy(attempts=3, timeout=5.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)


# What the swagger says a request may be.


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a ``$ref`` to a definition or a global parameter."""
    ref = schema.get("$ref", "")
    for prefix, table in (
        ("#/definitions/", DEFINITIONS),
        ("#/parameters/", SWAGGER["parameters"]),
    ):
        if ref.startswith(prefix):
            return dict(table[ref.removeprefix(prefix)])
    return schema


def operation(operation_id: str) -> tuple[str, dict[str, Any]]:
    """The path template and the swagger operation with this id."""
    for template, item in SWAGGER["paths"].items():
        for method, op in item.items():
            if method != "parameters" and op["operationId"] == operation_id:
                return template, op
    raise AssertionError(f"the client called an operation the swagger lacks: {operation_id}")


def read_only_paths(schema: dict[str, Any], value: Any, where: str = "") -> list[str]:
    """Where ``value`` holds a property the schema marks readOnly (or a JSON null)."""
    schema = resolve(schema)
    if value is None:
        return [where or "(root)"]
    if isinstance(value, list):
        return [
            p
            for i, item in enumerate(value)
            for p in read_only_paths(schema.get("items", {}), item, f"{where}/{i}")
        ]
    if not isinstance(value, dict):
        return []
    declared = dict(schema.get("properties", {}))
    for parent in schema.get("allOf", []):
        declared = {**resolve(parent).get("properties", {}), **declared}
    found = []
    for key, item in value.items():
        spec = declared.get(key, {})
        if spec.get("readOnly") or resolve(spec).get("readOnly"):
            found.append(f"{where}/{key}")
        else:
            found += read_only_paths(spec, item, f"{where}/{key}")
    return found


def path_values(template: str, path: str) -> dict[str, str]:
    """The path parameters of ``path`` by name, read with the template."""
    pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template))
    found = re.fullmatch(pattern, path, re.IGNORECASE)
    assert found is not None, f"{path} does not follow {template}"
    return found.groupdict()


def assert_follows_swagger(entry: RequestRecord) -> None:
    """Assert that one logged ARM request is what the swagger allows for its operation."""
    template, op = operation(entry.operation)
    parameters = [resolve(p) for p in op["parameters"]]
    query = {p["name"]: p for p in parameters if p["in"] == "query"}
    assert entry.query.get("api-version"), f"{entry.summary()}: no api-version"
    assert set(entry.query) <= set(query), (
        f"{entry.summary()}: undeclared {set(entry.query) - set(query)}"
    )
    if "$top" in entry.query:
        assert 1 <= int(entry.query["$top"]) <= query["$top"].get("maximum", 2**31)
    for name, value in path_values(template, entry.path).items():
        spec = next(p for p in parameters if p["name"] == name)
        if spec.get("format") == "uuid":
            uuid.UUID(value)
        assert re.search(spec.get("pattern", ""), value), f"{name}={value} breaks the pattern"
    body = next((p for p in parameters if p["in"] == "body"), None)
    if body is None:
        assert entry.body is None, f"{entry.summary()}: a body the swagger does not declare"
        return
    schema = {**body["schema"], "definitions": DEFINITIONS}
    Draft4Validator(schema, format_checker=FormatChecker()).validate(entry.body)
    assert read_only_paths(body["schema"], entry.body) == [], entry.summary()


# Fixtures: the sandbox, the real credential, the resilient client, the Sentinel client.


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox over TLS (list pages of 2 without $top, 30 generated incidents)."""
    async with run_arm_sandbox(sandbox=ArmSandbox(page_size=2), seed=30) as served:
        yield served
        for entry in served.calls(service="arm"):
            assert_follows_swagger(entry)


@pytest.fixture
async def credential(arm: ArmSandbox) -> AsyncIterator[ClientSecretCredential]:
    """The real async ClientSecretCredential, trusting only the sandbox CA."""
    async with ClientSecretCredential(
        arm.tenant_id,
        arm.client_id,
        arm.client_secret,
        authority=arm.authority,
        connection_verify=str(arm.ca_path),
    ) as made:
        yield made


@pytest.fixture
async def http(arm: ArmSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """The resilient httpx layer with fast retries, trusting only the sandbox CA."""
    async with resilient_client(breakers=Breakers(), verify=arm.ssl_context(), policy=FAST) as made:
        yield made


@pytest.fixture
def sentinel(
    arm: ArmSandbox, http: httpx.AsyncClient, credential: ClientSecretCredential
) -> SentinelClient:
    """The client under test, pointed at the sandbox."""
    return SentinelClient(http, credential, base_url=arm.url)


def seeded_name(arm: ArmSandbox, index: int = 0) -> str:
    """The name of one generated incident of the default workspace."""
    return str(sorted(i["name"] for i in arm.incidents())[index])


def modified(resource: dict[str, Any]) -> Any:
    """An incident resource's ``lastModifiedTimeUtc`` as an instant."""
    return parse_instant(resource["properties"]["lastModifiedTimeUtc"])


# Listing.


async def test_list_incidents_filter_orderby_top_walks_every_match_once_in_order(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """modified_since + status_not + asc + top=4 pages through exactly the matching incidents."""
    for index in range(3):
        arm.portal_update(seeded_name(arm, index), status="Closed", classification="FalsePositive")
    cut = sorted(modified(i) for i in arm.incidents())[10]
    expected = {
        i["name"]
        for i in arm.incidents()
        if modified(i) >= cut and i["properties"]["status"] != "Closed"
    }
    found = [
        i
        async for i in sentinel.list_incidents(
            WORKSPACE, modified_since=cut, status_not="Closed", top=4
        )
    ]
    names = [i.name for i in found]
    assert sorted(names) == sorted(expected) and len(names) == len(set(names))
    assert [i.last_modified for i in found] == sorted(i.last_modified for i in found)
    pages = arm.calls("Incidents_List")
    assert len(pages) == -(-len(expected) // 4) >= 2
    stamp = cut.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert pages[0].query == {
        "api-version": API_VERSION,
        "$filter": f"properties/lastModifiedTimeUtc ge {stamp} and properties/status ne 'Closed'",
        "$orderby": "properties/lastModifiedTimeUtc asc",
        "$top": "4",
    }
    assert all("$skipToken" in page.query for page in pages[1:])


async def test_list_incidents_no_filter_desc_counts_every_incident_of_the_sandbox(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """Without a filter every incident comes once, newest change first, over many pages."""
    found = [i async for i in sentinel.list_incidents(WORKSPACE, order="desc", top=7)]
    assert len(found) == len(arm.incidents()) == 30
    assert [i.last_modified for i in found] == sorted(
        (i.last_modified for i in found), reverse=True
    )
    assert len(arm.calls("Incidents_List")) == 5
    assert "$filter" not in arm.calls("Incidents_List")[0].query


async def test_list_incidents_modified_since_returns_only_later_changes(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """Only incidents changed at or after ``modified_since`` are listed."""
    arm.advance_clock(60)
    cut = arm.now()
    changed = {seeded_name(arm, 3), seeded_name(arm, 4)}
    for name in changed:
        arm.portal_update(name, severity="Low")
    found = {i.name async for i in sentinel.list_incidents(WORKSPACE, modified_since=cut)}
    assert found == changed


def test_list_incidents_bad_top_refused_before_any_request(sentinel: SentinelClient) -> None:
    """A ``top`` outside 1..1000 or an unknown order is a ValueError at once."""
    with pytest.raises(ValueError, match="top"):
        sentinel.list_incidents(WORKSPACE, top=1001)
    with pytest.raises(ValueError, match="order"):
        sentinel.list_incidents(WORKSPACE, order="sideways")  # type: ignore[arg-type]


async def test_incident_page_open_statuses_oldest_first_resumes_from_a_saved_link(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """Pages of New/Active incidents by creation; a kept ``next_link`` gives the next page."""
    arm.portal_update(seeded_name(arm, 0), status="Closed", classification="FalsePositive")
    expected = {i["name"] for i in arm.incidents() if i["properties"]["status"] != "Closed"}
    statuses = ["New", "Active"]
    first = await sentinel.incident_page(WORKSPACE, statuses=statuses, top=10)
    names, link = [i.name for i in first.incidents], first.next_link
    while link is not None:
        page = await sentinel.incident_page(WORKSPACE, statuses=statuses, top=10, link=link)
        names, link = names + [i.name for i in page.incidents], page.next_link
    assert sorted(names) == sorted(expected)
    created = [i.created for i in first.incidents if i.created is not None]
    assert len(created) == len(first.incidents) and created == sorted(created)
    calls = arm.calls("Incidents_List")
    wanted = "properties/status eq 'New' or properties/status eq 'Active'"
    assert calls[0].query["$filter"] == wanted
    assert calls[0].query["$orderby"] == "properties/createdTimeUtc asc"
    assert len(calls) == -(-len(expected) // 10) and all("$skipToken" in c.query for c in calls[1:])


async def test_incident_page_link_to_another_host_refused_before_sending(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """A saved link to another host is refused: the ARM token never leaves for it."""
    with pytest.raises(SentinelError, match="another host"):
        await sentinel.incident_page(
            WORKSPACE, statuses=["New"], link="https://evil.example/incidents?$skipToken=x"
        )
    assert arm.calls("Incidents_List") == []


# Reading one incident.


async def test_get_incident_official_example_maps_every_field(sentinel: SentinelClient) -> None:
    """The official GetIncidentById example comes back as Warden's Incident."""
    incident = await sentinel.get_incident(EXAMPLE_WORKSPACE, EXAMPLE_ID)
    assert incident.name == EXAMPLE_ID and incident.number == 3177
    assert incident.severity is Severity.HIGH and incident.status is IncidentStatus.CLOSED
    assert incident.owner.display == "john doe" and incident.classification == "FalsePositive"
    assert incident.etag == '"0300bf09-0000-0000-0000-5c37296e0000"'
    assert incident.workspace == "myWorkspace"


async def test_get_incident_unknown_name_raises_incident_not_found(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """A 404 becomes IncidentNotFound with ARM's code, message and request id; no retry."""
    with pytest.raises(IncidentNotFound) as caught:
        await sentinel.get_incident(WORKSPACE, "no-such-incident")
    error = caught.value
    assert error.status == 404 and error.code == "NotFound" and error.outcome is Outcome.GONE
    assert error.message == "Resource 'no-such-incident' does not exist"
    assert error.request_id and error.request_id in str(error)
    assert len(arm.calls("Incidents_Get")) == 1


# Updating.


async def test_update_incident_severity_with_etag_returns_new_etag_and_sandbox_changes(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """A severity change PUTs every writable property back with the etag; a new etag returns."""
    name = seeded_name(arm)
    before = arm.incident(name)
    snapshot = await sentinel.get_incident_snapshot(WORKSPACE, name)
    wanted = Severity.LOW if snapshot.incident.severity is Severity.HIGH else Severity.HIGH
    updated = await sentinel.update_incident(WORKSPACE, snapshot, IncidentChanges(severity=wanted))
    after = arm.incident(name)
    assert updated.severity is wanted and after["properties"]["severity"] == wanted.value
    assert updated.etag == after["etag"] != before["etag"]
    kept = ("title", "description", "status", "firstActivityTimeUtc", "lastActivityTimeUtc")
    assert all(after["properties"][key] == before["properties"][key] for key in kept)
    [put] = arm.calls("Incidents_CreateOrUpdate")
    assert put.body["etag"] == before["etag"] and put.query == {"api-version": API_VERSION}


async def test_update_incident_from_incident_model_adds_label_and_assigns_owner(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """An Incident (no snapshot) is enough for a label and an owner given by object id."""
    incident = await sentinel.get_incident(WORKSPACE, seeded_name(arm))
    changes = IncidentChanges(owner=Owner(object_id=JOHN), labels_to_add=("phishing", " "))
    updated = await sentinel.update_incident(WORKSPACE, incident, changes)
    assert updated.owner.name == "john doe" and updated.owner.upn == "john@contoso.com"
    assert updated.labels == ("phishing",) and updated.title == incident.title
    assert arm.incident(incident.name)["properties"]["labels"] == [
        {"labelName": "phishing", "labelType": "User"}
    ]
    snapshot = await sentinel.get_incident_snapshot(WORKSPACE, incident.name)
    unassigned = await sentinel.update_incident(WORKSPACE, snapshot, IncidentChanges(owner=Owner()))
    assert unassigned.owner == Owner() and unassigned.labels == ("phishing",)


async def test_update_incident_stale_etag_after_portal_change_raises_incident_conflict(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """After a change in the portal the old etag is refused: IncidentConflict, nothing saved."""
    name = seeded_name(arm)
    snapshot = await sentinel.get_incident_snapshot(WORKSPACE, name)
    arm.portal_update(name, severity="Informational")
    with pytest.raises(IncidentConflict) as caught:
        await sentinel.update_incident(
            WORKSPACE,
            snapshot,
            IncidentChanges(status=IncidentStatus.ACTIVE, severity=Severity.HIGH),
        )
    assert caught.value.status == 409 and caught.value.code == "Conflict"
    assert caught.value.message == f"Newer version of resource '{name}' exists. Data was not saved"
    assert arm.incident(name)["properties"]["severity"] == "Informational"
    assert {put.status for put in arm.calls("Incidents_CreateOrUpdate")} == {409}


@pytest.mark.parametrize(
    ("status", "classification", "reason", "words"),
    [
        (IncidentStatus.CLOSED, None, None, "needs a classification"),
        (IncidentStatus.CLOSED, "TruePositive", None, "needs a classification reason"),
        (IncidentStatus.CLOSED, "FalsePositive", "SuspiciousActivity", "is not a reason"),
        (IncidentStatus.ACTIVE, "FalsePositive", None, "only be given when closing"),
    ],
)
async def test_update_incident_invalid_close_refused_locally_nothing_sent(
    arm: ArmSandbox,
    sentinel: SentinelClient,
    status: IncidentStatus,
    classification: Any,
    reason: Any,
    words: str,
) -> None:
    """A close Sentinel would refuse raises InvalidIncidentChange before any PUT is sent."""
    snapshot = await sentinel.get_incident_snapshot(WORKSPACE, seeded_name(arm))
    changes = IncidentChanges(
        status=status, classification=classification, classification_reason=reason
    )
    with pytest.raises(InvalidIncidentChange, match=words) as caught:
        await sentinel.update_incident(WORKSPACE, snapshot, changes)
    assert (
        isinstance(caught.value, ValueError) and caught.value.user_message == caught.value.message
    )
    assert caught.value.outcome is Outcome.FAIL  # the outbox quarantines the job
    assert arm.calls("Incidents_CreateOrUpdate") == []


async def test_update_incident_close_with_classification_closes_then_reopen_clears_it(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """Closing as TruePositive with its reason works; reopening drops the verdict."""
    name = seeded_name(arm)
    snapshot = await sentinel.get_incident_snapshot(WORKSPACE, name)
    close = IncidentChanges(
        status=IncidentStatus.CLOSED,
        classification="TruePositive",
        classification_reason="SuspiciousActivity",
        classification_comment="Confirmed with the user",
    )
    closed = await sentinel.update_incident(WORKSPACE, snapshot, close)
    assert closed.status is IncidentStatus.CLOSED and closed.classification == "TruePositive"
    stored = arm.incident(name)["properties"]
    assert stored["classificationReason"] == "SuspiciousActivity"
    assert stored["classificationComment"] == "Confirmed with the user"
    snapshot = await sentinel.get_incident_snapshot(WORKSPACE, name)
    reopened = await sentinel.update_incident(
        WORKSPACE, snapshot, IncidentChanges(status=IncidentStatus.ACTIVE)
    )
    assert reopened.status is IncidentStatus.ACTIVE and reopened.classification is None
    assert "classificationReason" not in arm.incident(name)["properties"]


def test_incident_put_body_official_example_is_a_valid_request_without_read_only_parts() -> None:
    """The body built from GetIncidentById validates against the swagger's Incident."""
    example = json.loads((EXAMPLES / "GetIncidentById.json").read_text())
    resource = example["responses"]["200"]["body"]
    body = incident_put_body(resource, IncidentChanges(labels_to_add=("vip",)))
    Draft4Validator({"$ref": "#/definitions/Incident", "definitions": DEFINITIONS}).validate(body)
    assert read_only_paths({"$ref": "#/definitions/Incident"}, body) == []
    assert body["etag"] == resource["etag"]
    kept = ("classification", "classificationReason", "classificationComment", "description")
    assert all(body["properties"][key] == resource["properties"][key] for key in kept)
    assert body["properties"]["labels"] == [{"labelName": "vip"}]


def test_incident_put_body_without_etag_refused() -> None:
    """A resource without an etag would overwrite blindly: InvalidIncidentChange."""
    resource = {"properties": {"title": "t", "severity": "Low", "status": "New"}}
    with pytest.raises(InvalidIncidentChange, match="etag"):
        incident_put_body(resource, IncidentChanges(severity=Severity.HIGH))


# Comments.


async def test_add_comment_same_id_twice_keeps_one_comment(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """Adding with the same comment id again (a replayed job) leaves one comment."""
    name, comment_id = seeded_name(arm), str(uuid.uuid4())
    first = await sentinel.add_comment(WORKSPACE, name, "Looking into it", comment_id=comment_id)
    again = await sentinel.add_comment(WORKSPACE, name, "Looking into it", comment_id=comment_id)
    assert first.name == again.name == comment_id and again.message == "Looking into it"
    assert first.author == "Warden" and first.created is not None
    assert [c["name"] for c in arm.comments(name)] == [comment_id]


async def test_add_comment_connection_dropped_retried_with_same_id_one_comment(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """A PUT that got no answer is sent again by the layer under the same id: one comment."""
    name = seeded_name(arm)
    arm.add_fault(Fault(drop=True, method="PUT", path="/comments/"))
    comment = await sentinel.add_comment(WORKSPACE, name, "Escalated to tier 2")
    puts = arm.calls("IncidentComments_CreateOrUpdate")
    assert [p.fault for p in puts] == ["drop", None] and {p.child_id for p in puts} == {
        comment.name
    }
    assert len(arm.comments(name)) == 1


async def test_list_comments_many_pages_returns_every_comment_oldest_first(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """Five comments over pages of two come back in order, following nextLink."""
    name = seeded_name(arm)
    for number in range(5):
        await sentinel.add_comment(WORKSPACE, name, f"note {number}")
    comments = await sentinel.list_comments(WORKSPACE, name)
    assert [c.message for c in comments] == [f"note {n}" for n in range(5)]
    pages = arm.calls("IncidentComments_List")
    assert len(pages) == 3 and all("$skipToken" in page.query for page in pages[1:])


# Alerts and entities.


async def test_list_alerts_official_example_returns_typed_alerts(sentinel: SentinelClient) -> None:
    """Incidents_ListAlerts' example comes back as Alert records."""
    [alert] = await sentinel.list_alerts(EXAMPLE_WORKSPACE, ALERTS_ID)
    assert alert.name == "baa8a239-6fde-4ab7-a093-d09f7b75c58c" and alert.display_name == "myAlert"
    assert alert.severity is Severity.LOW and alert.status == "New"
    assert alert.product == "Azure Security Center" and alert.time is not None


async def test_list_alerts_server_error_once_retried_as_an_idempotent_read(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """The alerts POST is marked idempotent, so the layer sends it again after a 503."""
    arm.add_fault(Fault(status=503, method="POST", path="/alerts"))
    alerts = await sentinel.list_alerts(WORKSPACE, seeded_name(arm))
    assert alerts and [c.status for c in arm.calls("Incidents_ListAlerts")] == [503, 200]


async def test_list_entities_connection_dropped_once_retried_returns_kinds(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """The entities POST is retried after a reset; kinds and friendly names come back."""
    arm.add_fault(Fault(drop=True, method="POST", path="/entities"))
    entities = await sentinel.list_entities(EXAMPLE_WORKSPACE, ALERTS_ID)
    assert [(e.kind, e.friendly_name) for e in entities] == [("Account", "administrator")]
    assert [c.fault for c in arm.calls("Incidents_ListEntities")] == ["drop", None]


# Throttling, refusals, outages.


async def test_get_incident_throttled_once_retried_by_layer_then_succeeds(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """A 429 with Retry-After: 0 is waited out by the layer; the second GET succeeds."""
    name = seeded_name(arm)
    arm.add_fault(Fault(status=429, retry_after=0, method="GET", path=name))
    incident = await sentinel.get_incident(WORKSPACE, name)
    assert incident.name == name
    assert [c.status for c in arm.calls("Incidents_Get")] == [429, 200]


async def test_get_incident_throttled_beyond_deadline_raises_sentinel_throttled(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """A Retry-After longer than the deadline is not waited: SentinelThrottled carries it."""
    arm.add_fault(Fault(status=429, retry_after=120, times=None))
    with pytest.raises(SentinelThrottled) as caught:
        await sentinel.get_incident(WORKSPACE, seeded_name(arm))
    assert caught.value.retry_after == 120 and caught.value.outcome is Outcome.RATE_LIMITED
    assert caught.value.code == "SubscriptionRequestsThrottled"
    assert len(arm.calls("Incidents_Get")) == 1


async def test_get_incident_forbidden_raises_sentinel_refused_with_service_message(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """A 403 keeps the service's code and message for the operator, not for the user."""
    text = "The client does not have authorization to perform action 'incidents/read'."
    arm.add_fault(Fault(status=403, code="AuthorizationFailed", message=text, times=None))
    with pytest.raises(SentinelRefused) as caught:
        await sentinel.get_incident(WORKSPACE, seeded_name(arm))
    error = caught.value
    assert (error.status, error.code, error.message) == (403, "AuthorizationFailed", text)
    assert text in str(error) and text not in error.user_message


async def test_client_unknown_api_version_raises_sentinel_refused_400(
    arm: ArmSandbox, http: httpx.AsyncClient, credential: ClientSecretCredential
) -> None:
    """ARM's 400 for an api-version it does not serve surfaces with its message."""
    old = SentinelClient(http, credential, base_url=arm.url, api_version="2019-01-01-preview")
    with pytest.raises(SentinelRefused) as caught:
        await old.get_incident(WORKSPACE, seeded_name(arm))
    assert caught.value.status == 400 and caught.value.code == "InvalidApiVersionParameter"
    assert "2019-01-01-preview" in caught.value.message and caught.value.outcome is Outcome.FAIL
    assert caught.value.message in caught.value.user_message


async def test_get_incident_expired_token_raises_sentinel_refused_401(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """A token ARM finds expired is refused with 401 ExpiredAuthenticationToken."""
    name = seeded_name(arm)
    await sentinel.get_incident(WORKSPACE, name)
    arm.advance_clock(7200)
    with pytest.raises(SentinelRefused) as caught:
        await sentinel.get_incident(WORKSPACE, name)
    assert caught.value.status == 401 and caught.value.code == "ExpiredAuthenticationToken"


async def test_get_incident_server_error_every_attempt_raises_sentinel_unavailable(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """5xx on every attempt: the layer gives up and SentinelUnavailable says retry."""
    arm.add_fault(Fault(status=500, times=None))
    with pytest.raises(SentinelUnavailable) as caught:
        await sentinel.get_incident(WORKSPACE, seeded_name(arm))
    assert caught.value.status == 500 and caught.value.outcome is Outcome.RETRY
    assert len(arm.calls("Incidents_Get")) == FAST.attempts


async def test_get_incident_connection_dropped_every_attempt_raises_sentinel_unavailable(
    arm: ArmSandbox, sentinel: SentinelClient
) -> None:
    """No answer at all: SentinelUnavailable without a status, chained to DeliveryError."""
    arm.add_fault(Fault(drop=True, times=None))
    with pytest.raises(SentinelUnavailable) as caught:
        await sentinel.get_incident(WORKSPACE, seeded_name(arm))
    assert caught.value.status is None and caught.value.outcome is Outcome.RETRY
    assert isinstance(caught.value.__cause__, DeliveryError)


# Tokens and logs.


async def test_client_many_calls_fetch_one_token_and_never_log_it(
    arm: ArmSandbox,
    sentinel: SentinelClient,
    credential: ClientSecretCredential,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One token serves every call (kept until near expiry); no log line holds it."""
    caplog.set_level(logging.DEBUG)
    name = seeded_name(arm)
    arm.add_fault(Fault(status=503, method="GET", path=name))
    await sentinel.get_incident(WORKSPACE, name)
    await sentinel.list_comments(WORKSPACE, name)
    await sentinel.list_entities(WORKSPACE, name)
    assert len(arm.calls("Token")) == 1
    assert {c.auth_scheme for c in arm.calls(service="arm")} == {"Bearer"}
    token = (await credential.get_token(ARM_SCOPE)).token
    assert "retrying" in caplog.text
    assert token not in caplog.text and arm.client_secret not in caplog.text


# Workspaces and construction.


@pytest.mark.parametrize(
    "text",
    [
        f"{DEFAULT_SCOPE.subscription}/soc-rg/soc-workspace",
        f"/subscriptions/{DEFAULT_SCOPE.subscription}/resourceGroups/soc-rg/providers/"
        "Microsoft.OperationalInsights/workspaces/soc-workspace",
    ],
)
def test_workspace_parse_short_form_or_arm_id_returns_workspace(text: str) -> None:
    """Both spellings name the same workspace and its Sentinel base path."""
    assert Workspace.parse(text) == WORKSPACE
    assert WORKSPACE.base_path == DEFAULT_SCOPE.provider_path
    assert Workspace.parse(str(WORKSPACE)) == WORKSPACE


@pytest.mark.parametrize(
    "text",
    [
        "not-a-guid/rg/ws",
        f"{DEFAULT_SCOPE.subscription}/rg/../ws",
        f"{DEFAULT_SCOPE.subscription}/rg/w s",
        "a/b",
    ],
)
def test_workspace_parse_bad_text_raises_value_error(text: str) -> None:
    """A malformed subscription, resource group or workspace name is refused."""
    with pytest.raises(ValueError):
        Workspace.parse(text)


def test_client_plain_http_base_url_refused(
    http: httpx.AsyncClient, credential: ClientSecretCredential
) -> None:
    """A bearer token never travels over plain HTTP."""
    with pytest.raises(ValueError, match="https"):
        SentinelClient(http, credential, base_url="http://management.azure.com")
