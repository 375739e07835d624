"""Contract tests: the ARM sandbox speaks Sentinel (2025-12-01), Entra ID and Graph wire formats.

The real azure-identity credentials get tokens from the sandbox's token endpoint over
TLS (trusting only the sandbox CA); httpx then calls ARM and Graph with them. Every ARM
answer is checked against the schema the swagger declares for its operation and status,
with a validator built here from the contract (not the sandbox's own).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import operator
import re
import ssl
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential as SyncClientSecretCredential
from azure.identity.aio import ClientSecretCredential
from jsonschema import Draft4Validator

from sandbox.arm import DEFAULT_SCOPE, ArmSandbox, Fault, run_arm_sandbox
from sandbox.arm_deployments import first_alert
from sandbox.arm_odata import parse_instant
from sandbox.arm_schema import response_definition, schema_errors
from sandbox.arm_seed import EXAMPLE_SCOPE

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = REPO_ROOT / "contracts"
SWAGGER = json.loads((CONTRACTS / "azure-sentinel-incidents-2025-12-01.swagger.json").read_text())
DEFINITIONS = SWAGGER["definitions"]
EXAMPLES = CONTRACTS / "examples" / "azure-sentinel-2025-12-01"
GRAPH_YAML = (CONTRACTS / "msgraph-v1.0-subset.openapi.yaml").read_text()
API = {"api-version": "2025-12-01"}
ARM_SCOPE = "https://management.azure.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
INCIDENTS = DEFAULT_SCOPE.provider_path + "/incidents"
EXAMPLE_INCIDENTS = EXAMPLE_SCOPE.provider_path + "/incidents"
EXAMPLE_ID = "73e01a99-5cd7-4139-a149-9f2736ff2ab5"
ALERTS_ID = "afbd324f-6c48-459c-8710-8d1e1cd03812"
ETAG = re.compile(r'^"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"$')
NEW = {"properties": {"title": "Suspicious PowerShell", "severity": "High", "status": "New"}}
SUBTYPES = {
    schema["x-ms-discriminator-value"]: name
    for name, schema in DEFINITIONS.items()
    if "x-ms-discriminator-value" in schema
}
# contracts/msgraph-v1.0-subset.openapi.yaml, checkMemberGroups 2XX and default (ODataError);
# additionalProperties are left out (Graph's own @odata.context and innerError are strings).
GRAPH_ANSWER = {
    "type": "object",
    "properties": {
        "value": {"type": "array", "items": {"type": "string"}},
        "@odata.nextLink": {"type": ["string", "null"]},
    },
}
GRAPH_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "innerError": {"type": "object"},
            },
        }
    },
}


def operation(operation_id: str) -> dict[str, Any]:
    """The swagger operation with this id."""
    for item in SWAGGER["paths"].values():
        for method, op in item.items():
            if method != "parameters" and op["operationId"] == operation_id:
                return dict(op)
    raise KeyError(operation_id)


def assert_swagger_answer(operation_id: str, response: httpx.Response) -> None:
    """Assert the answer matches the swagger: a declared status and its schema."""
    declared = operation(operation_id)["responses"]
    status = str(response.status_code)
    if response.is_success:
        assert status in declared, f"{operation_id} may not answer {status}"
    schema = declared.get(status, declared["default"]).get("schema")
    if schema is None:
        assert response.content == b""
        return
    body = response.json()
    Draft4Validator({**schema, "definitions": DEFINITIONS}).validate(body)
    for item in body.get("entities", []) + (body.get("value") or []):
        if isinstance(item, dict) and item.get("kind") in SUBTYPES:
            subtype = {"$ref": f"#/definitions/{SUBTYPES[item['kind']]}"}
            Draft4Validator({**subtype, "definitions": DEFINITIONS}).validate(item)
    if not response.is_success:
        assert set(body["error"]) == {"code", "message"}


async def call(
    http: httpx.AsyncClient, method: str, path: str, operation_id: str, **kwargs: Any
) -> httpx.Response:
    """Make an ARM call with the api-version and check the answer against the swagger."""
    params = kwargs.pop("params", API)
    response = await http.request(method, path, params=params, **kwargs)
    assert_swagger_answer(operation_id, response)
    return response


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox over TLS with 30 generated incidents besides the examples."""
    async with run_arm_sandbox(seed=30) as served:
        yield served


@pytest.fixture
async def credential(arm: ArmSandbox) -> AsyncIterator[ClientSecretCredential]:
    """The real async ClientSecretCredential pointed at the sandbox authority."""
    async with ClientSecretCredential(
        arm.tenant_id,
        arm.client_id,
        arm.client_secret,
        authority=arm.authority,
        connection_verify=str(arm.ca_path),
    ) as made:
        yield made


@pytest.fixture
async def http(
    arm: ArmSandbox, credential: ClientSecretCredential
) -> AsyncIterator[httpx.AsyncClient]:
    """httpx trusting only the sandbox CA, with an ARM token from the real credential."""
    token = (await credential.get_token(ARM_SCOPE)).token
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=arm.url, verify=arm.ssl_context(), headers=headers
    ) as client:
        yield client


@pytest.fixture
async def anonymous(arm: ArmSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """httpx trusting the sandbox CA, without a token."""
    async with httpx.AsyncClient(base_url=arm.url, verify=arm.ssl_context()) as client:
        yield client


async def walk(
    http: httpx.AsyncClient, path: str, operation_id: str, params: dict[str, Any]
) -> list[list[dict[str, Any]]]:
    """Follow nextLink from the first page to the last; return the pages."""
    pages = [(await call(http, "GET", path, operation_id, params=params)).json()]
    while "nextLink" in pages[-1]:
        assert "$skipToken=" in pages[-1]["nextLink"]
        response = await http.get(pages[-1]["nextLink"])
        assert_swagger_answer(operation_id, response)
        pages.append(response.json())
    return [page["value"] for page in pages]


# Entra ID token endpoint.


async def test_client_secret_credential_right_secret_gets_verifiable_arm_token(
    arm: ArmSandbox, credential: ClientSecretCredential
) -> None:
    """The real async credential gets an RS256 token for ARM; the secret is never logged."""
    token = await credential.get_token(ARM_SCOPE)
    claims = arm.issuer.verify(token.token, ["https://management.azure.com"])
    assert claims["appid"] == arm.client_id and claims["tid"] == arm.tenant_id
    assert claims["iss"] == f"https://sts.windows.net/{arm.tenant_id}/"
    [entry] = arm.calls("Token")
    assert entry.status == 200 and entry.body == {
        "grant_type": "client_credentials",
        "client_id": arm.client_id,
        "scope": ARM_SCOPE,
    }


async def test_client_secret_credential_wrong_secret_raises_client_authentication_error(
    arm: ArmSandbox,
) -> None:
    """A wrong secret is refused with 401 invalid_client AADSTS7000215."""
    async with ClientSecretCredential(
        arm.tenant_id,
        arm.client_id,
        "wrong",
        authority=arm.authority,
        connection_verify=str(arm.ca_path),
    ) as wrong:
        with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
            await wrong.get_token(ARM_SCOPE)
    assert [entry.status for entry in arm.calls("Token")] == [401]


async def test_sync_credential_msal_reads_discovery_then_gets_graph_token(arm: ArmSandbox) -> None:
    """The MSAL-based sync credential reads the openid-configuration, then gets a token."""

    def get() -> str:
        made = SyncClientSecretCredential(
            arm.tenant_id,
            arm.client_id,
            arm.client_secret,
            authority=arm.authority,
            connection_verify=str(arm.ca_path),
            disable_instance_discovery=True,
        )
        try:
            return made.get_token(GRAPH_SCOPE).token
        finally:
            made.close()

    token = await asyncio.to_thread(get)
    assert (
        "GroupMember.Read.All" in arm.issuer.verify(token, ["https://graph.microsoft.com"])["roles"]
    )
    assert [e.operation for e in arm.calls(service="login")] == ["OpenIdConfiguration", "Token"]


@pytest.mark.parametrize(
    ("changes", "status", "error", "code"),
    [
        ({"grant_type": None}, 400, "invalid_request", 900144),
        ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
        ({"client_id": "unknown"}, 400, "unauthorized_client", 700016),
        ({"client_secret": None}, 401, "invalid_client", 7000218),
        (
            {"scope": "https://management.azure.com/user_impersonation"},
            400,
            "invalid_scope",
            1002012,
        ),
        ({"scope": "https://storage.azure.com/.default"}, 400, "invalid_resource", 500011),
    ],
)
async def test_token_endpoint_bad_request_returns_aadsts_error(
    arm: ArmSandbox,
    anonymous: httpx.AsyncClient,
    changes: dict[str, str | None],
    status: int,
    error: str,
    code: int,
) -> None:
    """Each malformed client_credentials request gets Entra ID's error JSON and number."""
    form: dict[str, str | None] = {
        "grant_type": "client_credentials",
        "client_id": arm.client_id,
        "client_secret": arm.client_secret,
        "scope": ARM_SCOPE,
        **changes,
    }
    sent = {key: value for key, value in form.items() if value is not None}
    response = await anonymous.post(f"/{arm.tenant_id}/oauth2/v2.0/token", data=sent)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error and body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")


async def test_default_trust_store_sandbox_certificate_refused(arm: ArmSandbox) -> None:
    """Without the sandbox CA the TLS handshake fails: verification is never switched off."""
    async with httpx.AsyncClient() as plain:
        with pytest.raises(httpx.ConnectError):
            await plain.get(f"{arm.url}/_sandbox/mode")


# Incidents: list, filter, order, paging.


async def test_incidents_list_filter_orderby_top_walks_each_match_once_in_order(
    arm: ArmSandbox, http: httpx.AsyncClient
) -> None:
    """A ge/ne filter ordered asc with $top=7 pages through exactly the matching incidents."""
    stamps = sorted(i["properties"]["lastModifiedTimeUtc"] for i in arm.incidents())
    cut = stamps[len(stamps) // 3][:19] + "Z"
    expected = {
        i["name"]
        for i in arm.incidents()
        if parse_instant(i["properties"]["lastModifiedTimeUtc"]) >= parse_instant(cut)
        and i["properties"]["status"] != "Closed"
    }
    clauses = f"properties/lastModifiedTimeUtc ge {cut} and properties/status ne 'Closed'"
    params = {
        **API,
        "$top": 7,
        "$orderby": "properties/lastModifiedTimeUtc asc",
        "$filter": clauses,
    }
    pages = await walk(http, INCIDENTS, "Incidents_List", params)
    names = [item["name"] for page in pages for item in page]
    assert sorted(names) == sorted(expected) and len(names) == len(set(names))
    assert all(len(page) == 7 for page in pages[:-1])
    times = [
        parse_instant(item["properties"]["lastModifiedTimeUtc"]) for page in pages for item in page
    ]
    assert times == sorted(times)


async def test_incidents_list_change_during_walk_still_returns_each_once(
    arm: ArmSandbox, http: httpx.AsyncClient
) -> None:
    """An incident changed in the portal mid-walk keeps the snapshot: no skip, no repeat."""
    params = {**API, "$top": 10, "$orderby": "properties/lastModifiedTimeUtc asc"}
    page = (await call(http, "GET", INCIDENTS, "Incidents_List", params=params)).json()
    arm.portal_update(page["value"][0]["name"], status="Active")
    names = [item["name"] for item in page["value"]]
    while "nextLink" in page:
        response = await http.get(page["nextLink"])
        assert_swagger_answer("Incidents_List", response)
        page = response.json()
        names += [item["name"] for item in page["value"]]
    assert sorted(names) == sorted(i["name"] for i in arm.incidents())


@pytest.mark.parametrize("op", ["gt", "ge", "lt", "le"])
async def test_incidents_list_time_comparison_matches_python_comparison(
    arm: ArmSandbox, http: httpx.AsyncClient, op: str
) -> None:
    """gt/ge/lt/le on createdTimeUtc select what the same comparison in Python selects."""
    pivot = sorted(i["properties"]["createdTimeUtc"] for i in arm.incidents())[10]
    compare = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}[op]
    expected = {
        i["name"]
        for i in arm.incidents()
        if compare(parse_instant(i["properties"]["createdTimeUtc"]), parse_instant(pivot))
    }
    params = {**API, "$top": 1000, "$filter": f"properties/createdTimeUtc {op} {pivot}"}
    [page] = await walk(http, INCIDENTS, "Incidents_List", params)
    assert {item["name"] for item in page} == expected


@pytest.mark.parametrize(
    ("clauses", "keep"),
    [
        (
            "properties/status eq 'New' or properties/status eq 'Active'",
            lambda p: p["status"] in ("New", "Active"),
        ),
        (
            "(properties/status eq 'New' or properties/status eq 'Closed') and "
            "properties/severity eq 'High'",
            lambda p: p["status"] in ("New", "Closed") and p["severity"] == "High",
        ),
        (
            "properties/status eq 'Closed' or properties/status eq 'New' and "
            "properties/severity ne 'Low'",
            lambda p: p["status"] == "Closed" or (p["status"] == "New" and p["severity"] != "Low"),
        ),
    ],
)
async def test_incidents_list_or_and_parentheses_match_odata_precedence(
    arm: ArmSandbox, http: httpx.AsyncClient, clauses: str, keep: Any
) -> None:
    """``or`` joins, ``and`` binds tighter and parentheses group, as OData says."""
    expected = {i["name"] for i in arm.incidents() if keep(i["properties"])}
    params = {**API, "$top": 1000, "$filter": clauses}
    [page] = await walk(http, INCIDENTS, "Incidents_List", params)
    assert {item["name"] for item in page} == expected


@pytest.mark.parametrize(
    "clauses",
    [
        "(properties/status eq 'New' or properties/status eq 'Active'",
        "properties/status eq 'New' or",
        "properties/status eq 'New')",
        "properties/status eq 'New' xor properties/status eq 'Active'",
    ],
)
async def test_incidents_list_broken_or_filter_returns_400(
    http: httpx.AsyncClient, clauses: str
) -> None:
    """An unclosed parenthesis, a dangling ``or`` or an unknown operator is refused."""
    params = {**API, "$filter": clauses}
    response = await call(http, "GET", INCIDENTS, "Incidents_List", params=params)
    assert response.status_code == 400 and response.json()["error"]["code"] == "BadRequest"


@pytest.mark.parametrize(
    "params",
    [
        {"$top": 1001},
        {"$top": 0},
        {"$filter": "properties/title contains 'x'"},
        {"$orderby": "title"},
        {"$skipToken": "bogus"},
    ],
)
async def test_incidents_list_unsupported_option_returns_400(
    http: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    """$top over 1000, unknown filters or orderings and unknown skip tokens are refused."""
    response = await call(http, "GET", INCIDENTS, "Incidents_List", params={**API, **params})
    assert response.status_code == 400 and response.json()["error"]["code"] == "BadRequest"


async def test_incidents_list_default_page_is_50_newest_first(
    arm: ArmSandbox, http: httpx.AsyncClient
) -> None:
    """Without $top a page holds 50 incidents, newest created first."""
    arm.seed(25)
    body = (await call(http, "GET", INCIDENTS, "Incidents_List")).json()
    created = [parse_instant(i["properties"]["createdTimeUtc"]) for i in body["value"]]
    assert len(created) == 50 and created == sorted(created, reverse=True) and "nextLink" in body


# Incidents: get, put, delete.


async def test_incident_get_official_example_returns_example_body(http: httpx.AsyncClient) -> None:
    """GetIncidentById.json's incident is served as the example shows it."""
    example = json.loads((EXAMPLES / "GetIncidentById.json").read_text())["responses"]["200"][
        "body"
    ]
    body = (await call(http, "GET", f"{EXAMPLE_INCIDENTS}/{EXAMPLE_ID}", "Incidents_Get")).json()
    assert body["etag"] == example["etag"] and body["properties"]["title"] == "My incident"
    assert {k: v for k, v in body.items() if k != "properties"} == {
        k: v for k, v in example.items() if k != "properties"
    }


async def test_incident_put_new_then_update_with_etag_returns_201_then_200(
    arm: ArmSandbox, http: httpx.AsyncClient
) -> None:
    """Create answers 201 with a quoted-GUID etag; update with it answers 200 and bumps both."""
    path = f"{INCIDENTS}/warden-test-1"
    created = await call(http, "PUT", path, "Incidents_CreateOrUpdate", json=NEW)
    assert created.status_code == 201
    first = created.json()
    assert ETAG.match(first["etag"]) and first["name"] == "warden-test-1"
    change = {"etag": first["etag"], "properties": {**NEW["properties"], "status": "Active"}}
    updated = await call(http, "PUT", path, "Incidents_CreateOrUpdate", json=change)
    assert updated.status_code == 200
    second = updated.json()
    assert second["etag"] != first["etag"] and ETAG.match(second["etag"])
    assert parse_instant(second["properties"]["lastModifiedTimeUtc"]) > parse_instant(
        first["properties"]["lastModifiedTimeUtc"]
    )
    assert second["properties"]["incidentNumber"] == first["properties"]["incidentNumber"]
    assert arm.incident("warden-test-1")["properties"]["status"] == "Active"


async def test_incident_put_stale_etag_after_portal_change_returns_409_conflict(
    arm: ArmSandbox, http: httpx.AsyncClient
) -> None:
    """After a change in the portal the old etag is refused as Sentinel refuses it."""
    path = f"{INCIDENTS}/warden-test-2"
    stale = (await call(http, "PUT", path, "Incidents_CreateOrUpdate", json=NEW)).json()["etag"]
    arm.portal_update("warden-test-2", severity="Low")
    response = await call(
        http, "PUT", path, "Incidents_CreateOrUpdate", json={"etag": stale, **NEW}
    )
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "Conflict",
        "message": "Newer version of resource 'warden-test-2' exists. Data was not saved",
    }
    assert arm.incident("warden-test-2")["properties"]["severity"] == "Low"


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({}, 400),
        ({"classification": "BenignPositive"}, 400),
        ({"classification": "TruePositive", "classificationReason": "SuspiciousActivity"}, 201),
        ({"classification": "FalsePositive", "classificationComment": "test"}, 201),
    ],
)
async def test_incident_put_closed_classification_rules_return_expected_status(
    http: httpx.AsyncClient, extra: dict[str, str], status: int
) -> None:
    """Closing needs a classification, and TruePositive/BenignPositive need a reason."""
    body = {"properties": {**NEW["properties"], "status": "Closed", **extra}}
    response = await call(
        http, "PUT", f"{INCIDENTS}/closing", "Incidents_CreateOrUpdate", json=body
    )
    assert response.status_code == status
    if status == 400:
        assert response.json()["error"]["code"] == "BadRequest"
        assert "classification" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"properties": {"title": "x", "severity": "Huge", "status": "New"}},
        {"properties": {"severity": "High", "status": "New"}},
        {
            "properties": {
                "title": "x",
                "severity": "High",
                "status": "New",
                "owner": {"objectId": 5},
            }
        },
        [],
    ],
)
async def test_incident_put_invalid_body_returns_400_bad_request(
    http: httpx.AsyncClient, body: object
) -> None:
    """A body the swagger's Incident definition refuses is answered 400 BadRequest."""
    response = await call(http, "PUT", f"{INCIDENTS}/bad", "Incidents_CreateOrUpdate", json=body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "BadRequest"


async def test_incident_put_get_body_sent_back_ignores_read_only_properties(
    http: httpx.AsyncClient,
) -> None:
    """A GET body edited and PUT back (read-only parts included) is accepted."""
    path = f"{EXAMPLE_INCIDENTS}/{EXAMPLE_ID}"
    body = (await call(http, "GET", path, "Incidents_Get")).json()
    body["properties"].update(
        status="Active", incidentNumber=1, createdTimeUtc="2000-01-01T00:00:00Z"
    )
    updated = (await call(http, "PUT", path, "Incidents_CreateOrUpdate", json=body)).json()
    assert updated["properties"]["status"] == "Active"
    assert updated["properties"]["incidentNumber"] == 3177
    assert updated["properties"]["createdTimeUtc"] == "2019-01-01T13:15:30Z"


async def test_incident_put_owner_object_id_fills_owner_from_directory(
    http: httpx.AsyncClient,
) -> None:
    """An owner given by objectId comes back with the user's name, UPN and email."""
    body = {
        "properties": {
            **NEW["properties"],
            "owner": {"objectId": "2046feea-040d-4a46-9e2b-91c2941bfa70"},
        }
    }
    answer = (
        await call(http, "PUT", f"{INCIDENTS}/owned", "Incidents_CreateOrUpdate", json=body)
    ).json()
    assert answer["properties"]["owner"]["userPrincipalName"] == "john@contoso.com"
    assert answer["properties"]["owner"]["assignedTo"] == "john doe"


async def test_incident_put_null_owner_and_etag_unassigns_unconditionally(
    http: httpx.AsyncClient,
) -> None:
    """JSON nulls in a PUT mean "not set": a null objectId unassigns, a null etag is ignored."""
    path = f"{INCIDENTS}/unassigned"
    owned = {"properties": {**NEW["properties"], "owner": {"objectId": str(uuid.uuid4())}}}
    await call(http, "PUT", path, "Incidents_CreateOrUpdate", json=owned)
    cleared = {"etag": None, "properties": {**NEW["properties"], "owner": {"objectId": None}}}
    answer = await call(http, "PUT", path, "Incidents_CreateOrUpdate", json=cleared)
    assert answer.status_code == 200 and answer.json()["properties"]["owner"] == {}


async def test_incident_delete_existing_then_again_returns_200_then_204(
    http: httpx.AsyncClient,
) -> None:
    """DELETE answers 200 when it deleted the incident and 204 when there was none."""
    path = f"{EXAMPLE_INCIDENTS}/{EXAMPLE_ID}"
    assert (await call(http, "DELETE", path, "Incidents_Delete")).status_code == 200
    assert (await call(http, "DELETE", path, "Incidents_Delete")).status_code == 204
    assert (await call(http, "GET", path, "Incidents_Get")).status_code == 404


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        (f"{INCIDENTS}/no-such-incident", 404, "NotFound"),
        (INCIDENTS.replace("soc-workspace", "other-ws") + "/x", 404, "ResourceNotFound"),
        (INCIDENTS.replace("soc-rg", "other-rg") + "/x", 404, "ResourceGroupNotFound"),
        (
            INCIDENTS.replace(DEFAULT_SCOPE.subscription, "not-a-guid") + "/x",
            400,
            "InvalidSubscriptionId",
        ),
    ],
)
async def test_incident_get_unknown_resource_returns_arm_error(
    http: httpx.AsyncClient, path: str, status: int, code: str
) -> None:
    """Unknown incidents, workspaces, groups and malformed subscriptions get ARM's errors."""
    response = await call(http, "GET", path, "Incidents_Get")
    assert response.status_code == status and response.json()["error"]["code"] == code


async def test_arm_path_case_insensitive_and_unknown_path_returns_404(
    http: httpx.AsyncClient,
) -> None:
    """ARM matches paths case-insensitively; an unserved type is 404, a wrong method 405."""
    lowered = f"{EXAMPLE_INCIDENTS}/{EXAMPLE_ID}".lower()
    assert (await http.get(lowered, params=API)).status_code == 200
    unknown = await http.get(EXAMPLE_SCOPE.provider_path + "/bookmarks", params=API)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "InvalidResourceType"
    wrong = await http.post(f"{EXAMPLE_INCIDENTS}/{EXAMPLE_ID}", params=API)
    assert wrong.status_code == 405


# Alerts, entities, comments.


async def test_alerts_and_entities_post_return_official_example_shapes(
    http: httpx.AsyncClient,
) -> None:
    """POST .../alerts and .../entities answer the example incident's alert and entity lists."""
    examples = {
        name: json.loads((EXAMPLES / name).read_text())["responses"]["200"]["body"]
        for name in ("GetAllIncidentAlerts.json", "GetAllIncidentEntities.json")
    }
    alerts = await call(
        http, "POST", f"{EXAMPLE_INCIDENTS}/{ALERTS_ID}/alerts", "Incidents_ListAlerts"
    )
    entities = await call(
        http, "POST", f"{EXAMPLE_INCIDENTS}/{ALERTS_ID}/entities", "Incidents_ListEntities"
    )
    assert alerts.json() == examples["GetAllIncidentAlerts.json"]
    assert entities.json() == examples["GetAllIncidentEntities.json"]


async def test_alerts_post_generated_incident_validates_against_swagger(
    arm: ArmSandbox, http: httpx.AsyncClient
) -> None:
    """Generated incidents have alerts and entities whose shapes the swagger accepts."""
    name = arm.incidents()[0]["name"]
    alerts = await call(http, "POST", f"{INCIDENTS}/{name}/alerts", "Incidents_ListAlerts")
    entities = await call(http, "POST", f"{INCIDENTS}/{name}/entities", "Incidents_ListEntities")
    assert alerts.json()["value"] and {e["kind"] for e in entities.json()["entities"]} == {
        "Account",
        "Host",
        "Ip",
    }


async def test_comments_put_then_list_pages_and_counts(
    arm: ArmSandbox, http: httpx.AsyncClient
) -> None:
    """Comment PUTs answer 201 then 200; the list pages with nextLink; the count follows."""
    name = arm.incidents()[0]["name"]
    base = f"{INCIDENTS}/{name}/comments"
    for number in range(3):
        body = {"properties": {"message": f"note {number}"}}
        response = await call(
            http, "PUT", f"{base}/c{number}", "IncidentComments_CreateOrUpdate", json=body
        )
        assert response.status_code == 201
        assert response.json()["properties"]["author"]["name"] == "Warden"
    edit = {"properties": {"message": "note 0, edited"}}
    assert (
        await call(http, "PUT", f"{base}/c0", "IncidentComments_CreateOrUpdate", json=edit)
    ).status_code == 200
    pages = await walk(http, base, "IncidentComments_List", {**API, "$top": 2})
    assert [[c["properties"]["message"] for c in page] for page in pages] == [
        ["note 0, edited", "note 1"],
        ["note 2"],
    ]
    incident = (await call(http, "GET", f"{INCIDENTS}/{name}", "Incidents_Get")).json()
    assert incident["properties"]["additionalData"]["commentsCount"] == 3


async def test_comment_get_delete_and_invalid_body_follow_swagger(http: httpx.AsyncClient) -> None:
    """A comment reads back, deletes with 200 then 204, and a body without message is 400."""
    path = f"{EXAMPLE_INCIDENTS}/{EXAMPLE_ID}/comments/4bb36b7b-26ff-4d1c-9cbe-0d8ab3da0014"
    got = (await call(http, "GET", path, "IncidentComments_Get")).json()
    assert got["properties"]["message"] == "Some message"
    bad = await call(http, "PUT", path, "IncidentComments_CreateOrUpdate", json={"properties": {}})
    assert bad.status_code == 400
    assert (await call(http, "DELETE", path, "IncidentComments_Delete")).status_code == 200
    assert (await call(http, "DELETE", path, "IncidentComments_Delete")).status_code == 204


# api-version and authentication.


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "MissingApiVersionParameter"),
        ({"api-version": "2024-03-01"}, "InvalidApiVersionParameter"),
    ],
)
async def test_arm_call_bad_api_version_returns_400(
    http: httpx.AsyncClient, params: dict[str, str], code: str
) -> None:
    """A missing or unserved api-version is refused with ARM's 400."""
    response = await call(http, "GET", INCIDENTS, "Incidents_List", params=params)
    assert response.status_code == 400 and response.json()["error"]["code"] == code


async def test_arm_call_without_token_returns_401_with_challenge(
    arm: ArmSandbox, anonymous: httpx.AsyncClient
) -> None:
    """No Authorization header: 401 AuthenticationFailed with a Bearer challenge."""
    response = await call(anonymous, "GET", INCIDENTS, "Incidents_List")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AuthenticationFailed"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer authorization_uri="{arm.authority}/{arm.tenant_id}"')


async def test_arm_call_bad_tokens_return_401_with_reason(
    arm: ArmSandbox, anonymous: httpx.AsyncClient
) -> None:
    """Graph audience, foreign signature, garbage and expiry each get ARM's own 401 code."""
    foreign = ArmSandbox(tenant_id=arm.tenant_id, seed_examples=False).issue_token()
    cases = {
        arm.issue_token("https://graph.microsoft.com"): "InvalidAuthenticationTokenAudience",
        foreign: "InvalidAuthenticationToken",
        "not-a-jwt": "InvalidAuthenticationToken",
    }
    expiring = arm.issue_token(lifetime=60)
    for token, code in cases.items():
        response = await call(
            anonymous,
            "GET",
            INCIDENTS,
            "Incidents_List",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 401 and response.json()["error"]["code"] == code
    arm.advance_clock(61)
    expired = await call(
        anonymous,
        "GET",
        INCIDENTS,
        "Incidents_List",
        headers={"Authorization": f"Bearer {expiring}"},
    )
    assert (
        expired.status_code == 401
        and expired.json()["error"]["code"] == "ExpiredAuthenticationToken"
    )


# Faults, log, control API.


async def test_throttle_fault_returns_429_retry_after_then_clears(
    arm: ArmSandbox, http: httpx.AsyncClient
) -> None:
    """A one-shot 429 fault added over the control API answers Retry-After, then clears."""
    added = await http.post("/_sandbox/faults", json={"status": 429, "retry_after": 3})
    assert added.status_code == 201
    throttled = await call(http, "GET", INCIDENTS, "Incidents_List")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    assert throttled.json()["error"]["code"] == "SubscriptionRequestsThrottled"
    assert throttled.headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"
    assert (await call(http, "GET", INCIDENTS, "Incidents_List")).status_code == 200


@pytest.mark.parametrize(
    ("status", "code"), [(500, "InternalServerError"), (503, "ServiceUnavailable")]
)
async def test_server_error_fault_returns_cloud_error(
    arm: ArmSandbox, http: httpx.AsyncClient, status: int, code: str
) -> None:
    """5xx faults answer a CloudError with ARM's code."""
    arm.add_fault(Fault(status=status, method="PUT"))
    response = await call(http, "PUT", f"{INCIDENTS}/x", "Incidents_CreateOrUpdate", json=NEW)
    assert response.status_code == status and response.json()["error"]["code"] == code


async def test_drop_fault_resets_connection_and_logs_no_status(
    arm: ArmSandbox, http: httpx.AsyncClient
) -> None:
    """A drop fault closes the connection without an answer; the next call succeeds."""
    arm.add_fault(Fault(drop=True, path="/incidents"))
    with pytest.raises(httpx.TransportError):
        await http.get(INCIDENTS, params=API)
    assert [e.fault for e in arm.calls("Incidents_List")] == ["drop"]
    assert arm.calls("Incidents_List")[0].status is None
    assert (await call(http, "GET", INCIDENTS, "Incidents_List")).status_code == 200


async def test_delay_fault_answers_normally_and_is_logged(
    arm: ArmSandbox, http: httpx.AsyncClient
) -> None:
    """A delay-only fault slows one answer down without changing it."""
    arm.add_fault(Fault(delay=0.05))
    assert (await call(http, "GET", INCIDENTS, "Incidents_List")).status_code == 200
    assert [e.fault for e in arm.calls("Incidents_List")] == ["delay"]


async def test_graph_throttle_fault_returns_odata_429_retry_after(
    arm: ArmSandbox, credential: ClientSecretCredential, anonymous: httpx.AsyncClient
) -> None:
    """A fault queued for the graph service answers an OData 429 with Retry-After."""
    token = (await credential.get_token(GRAPH_SCOPE)).token
    added = await anonymous.post(
        "/_sandbox/faults", params={"service": "graph"}, json={"status": 429, "retry_after": 7}
    )
    assert added.status_code == 201 and added.json()["service"] == "graph"
    response = await anonymous.post(
        "/v1.0/users/john@contoso.com/checkMemberGroups",
        json={"groupIds": ["g"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert response.json()["error"]["code"] == "TooManyRequests"
    Draft4Validator(GRAPH_ERROR).validate(response.json())


async def test_down_mode_returns_503_until_cleared(
    arm: ArmSandbox, http: httpx.AsyncClient
) -> None:
    """Down mode answers 503 with Retry-After to every ARM call until faults are cleared."""
    mode = await http.put(
        "/_sandbox/mode", json={"service": "arm", "down": True, "downRetryAfter": 5}
    )
    assert mode.json() == {"down": {"arm": 5}}
    response = await call(http, "GET", INCIDENTS, "Incidents_List")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert (await http.delete("/_sandbox/faults")).status_code == 204
    assert (await call(http, "GET", INCIDENTS, "Incidents_List")).status_code == 200


async def test_request_log_keeps_trace_headers_never_token_or_secret(
    arm: ArmSandbox, http: httpx.AsyncClient
) -> None:
    """The log holds traceparent and x-ms-client-request-id, never the token or the secret."""
    token = http.headers["Authorization"].split(" ", 1)[1]
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    await http.get(
        INCIDENTS,
        params=API,
        headers={"traceparent": traceparent, "x-ms-client-request-id": "abc-123"},
    )
    [entry] = arm.calls("Incidents_List")
    assert entry.traceparent == traceparent and entry.client_request_id == "abc-123"
    assert entry.app_id == arm.client_id and entry.auth_scheme == "Bearer"
    dumped = (await http.get("/_sandbox/requests")).text
    assert token not in dumped and arm.client_secret not in dumped


async def test_wait_for_answered_call_returns_matching_entry(
    arm: ArmSandbox, http: httpx.AsyncClient
) -> None:
    """wait_for wakes on the logged call it waits for, without polling."""
    task = asyncio.create_task(http.get(f"{EXAMPLE_INCIDENTS}/{EXAMPLE_ID}", params=API))
    entries = await arm.wait_for(lambda s: s.calls("Incidents_Get", successful=True), timeout=10)
    assert entries[0].incident_id == EXAMPLE_ID
    assert (await task).status_code == 200


async def test_control_portal_update_bumps_etag_and_create_adds_incident(
    arm: ArmSandbox, http: httpx.AsyncClient
) -> None:
    """PATCH /_sandbox/incidents/{id} changes an incident; POST makes a new one appear."""
    before = arm.incident(f"{arm.incidents()[0]['name']}")
    patched = await http.patch(
        f"/_sandbox/incidents/{before['name']}",
        json={"properties": {"status": "Active", "severity": "Low"}},
    )
    assert patched.status_code == 200 and patched.json()["etag"] != before["etag"]
    created = await http.post(
        "/_sandbox/incidents", json={"name": "fresh", "properties": {"severity": "High"}}
    )
    assert created.status_code == 201
    got = (await call(http, "GET", f"{INCIDENTS}/fresh", "Incidents_Get")).json()
    assert got["properties"]["severity"] == "High"
    assert (
        await http.patch("/_sandbox/incidents/none", json={"properties": {}})
    ).status_code == 404


async def test_control_deploy_before_incident_names_resource_and_refuses_bad_input(
    arm: ArmSandbox, http: httpx.AsyncClient
) -> None:
    """POST /_sandbox/incidents/{id}/deployments makes the incident name a resource deployed
    that long before its first alert (a ListEntities entity, a listed deployment); an
    unknown incident is 404, a body without a name 400."""
    made = arm.create_incident({"title": "Web shell"})
    resource = "/subscriptions/s1/resourceGroups/rg-web/providers/Microsoft.Web/sites/app-1"
    answer = await http.post(
        f"/_sandbox/incidents/{made['name']}/deployments",
        json={"name": "release-9", "minutesBefore": 12, "resourceId": resource},
    )
    assert answer.status_code == 201, answer.text
    deployment = answer.json()
    assert deployment["properties"]["outputResources"] == [{"id": resource}]
    stored = arm.workspace().incidents[str(made["name"]).lower()]
    gap = first_alert(stored) - datetime.datetime.fromisoformat(
        deployment["properties"]["timestamp"].replace("Z", "+00:00")
    )
    assert gap == datetime.timedelta(minutes=12)
    names = [e.get("properties", {}).get("resourceId") for e in stored.entities]
    assert resource in names
    missing = await http.post(
        "/_sandbox/incidents/none/deployments", json={"name": "r", "resourceId": resource}
    )
    assert missing.status_code == 404
    unnamed = await http.post(f"/_sandbox/incidents/{made['name']}/deployments", json={})
    assert unnamed.status_code == 400 and "name" in unnamed.text


# Graph checkMemberGroups.


def test_graph_contract_declares_check_member_groups_string_array() -> None:
    """The Graph subset declares checkMemberGroups with groupIds in and value out as strings."""
    start = GRAPH_YAML.index("  /users/{user-id}/microsoft.graph.checkMemberGroups:")
    block = GRAPH_YAML[start : GRAPH_YAML.index("\n  /", start + 1)]
    flat = " ".join(block.split())
    assert "groupIds: type: array items: type: string" in flat
    assert "value: type: array items: type: string" in flat


@pytest.mark.parametrize("action", ["checkMemberGroups", "microsoft.graph.checkMemberGroups"])
async def test_check_member_groups_member_returns_asked_groups_it_belongs_to(
    arm: ArmSandbox, credential: ClientSecretCredential, anonymous: httpx.AsyncClient, action: str
) -> None:
    """With a Graph token the answer lists the asked groups the user is a member of."""
    user = arm.add_user("Megan Bowen", "megan@contoso.com")
    set_groups = await anonymous.put(
        f"/_sandbox/users/{user.object_id}/groups", json={"groupIds": ["g-soc", "g-admins"]}
    )
    assert set_groups.status_code == 200
    token = (await credential.get_token(GRAPH_SCOPE)).token
    response = await anonymous.post(
        f"/v1.0/users/megan@contoso.com/{action}",
        json={"groupIds": ["g-soc", "g-other"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    Draft4Validator(GRAPH_ANSWER).validate(response.json())
    assert response.json()["value"] == ["g-soc"]


async def test_check_member_groups_refusals_use_odata_error(
    arm: ArmSandbox, credential: ClientSecretCredential, anonymous: httpx.AsyncClient
) -> None:
    """ARM token 401, unknown user 404, over 20 groups 400: each an OData error body."""
    graph = {"Authorization": f"Bearer {(await credential.get_token(GRAPH_SCOPE)).token}"}
    armed = {"Authorization": f"Bearer {(await credential.get_token(ARM_SCOPE)).token}"}
    user = "2046feea-040d-4a46-9e2b-91c2941bfa70"
    cases = [
        (armed, user, ["g"], 401, "InvalidAuthenticationToken"),
        (graph, "nobody@contoso.com", ["g"], 404, "Request_ResourceNotFound"),
        (graph, user, [f"g{n}" for n in range(21)], 400, "Request_BadRequest"),
    ]
    for headers, who, ids, status, code in cases:
        response = await anonymous.post(
            f"/v1.0/users/{who}/checkMemberGroups", json={"groupIds": ids}, headers=headers
        )
        assert response.status_code == status and response.json()["error"]["code"] == code
        Draft4Validator(GRAPH_ERROR).validate(response.json())


async def test_check_member_groups_without_read_role_returns_403(
    arm: ArmSandbox, anonymous: httpx.AsyncClient
) -> None:
    """An app without a membership-reading Graph role is refused with 403."""
    arm.register_client("no-roles", "s3cret", graph_roles=[])
    token = arm.issue_token("https://graph.microsoft.com", client_id="no-roles")
    response = await anonymous.post(
        "/v1.0/users/john@contoso.com/checkMemberGroups",
        json={"groupIds": ["g"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert (
        response.status_code == 403
        and response.json()["error"]["code"] == "Authorization_RequestDenied"
    )


# The contract itself, and the standalone server.


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_official_example_responses_validate_against_swagger(example: str) -> None:
    """Each official example's response bodies pass the sandbox's swagger validator."""
    operations = {
        Path(ex["$ref"]).name: op["operationId"]
        for item in SWAGGER["paths"].values()
        for method, op in item.items()
        if method != "parameters"
        for ex in op.get("x-ms-examples", {}).values()
    }
    responses = json.loads((EXAMPLES / example).read_text())["responses"]
    for status, answer in responses.items():
        definition = response_definition(operations[example], int(status))
        if definition is None:
            assert "body" not in answer
        else:
            assert schema_errors(definition, answer["body"]) == []


async def test_standalone_port_zero_logs_url_and_serves_tls(tmp_path: Path) -> None:
    """``python -m sandbox.arm --port 0`` logs its URL and writes a 0600 info file."""
    info = tmp_path / "arm.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox.arm",
        "--port",
        "0",
        "--seed",
        "3",
        "--info-file",
        str(info),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        lines = [
            (await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode()
            for _ in range(3)
        ]
        url = re.search(r"listening on (https://\S+)", lines[0])
        assert url is not None, lines
        details = json.loads(info.read_text())
        assert info.stat().st_mode & 0o077 == 0 and details["clientSecret"] not in "".join(lines)
        context = ssl.create_default_context(cafile=details["caPath"])
        async with httpx.AsyncClient(verify=context) as client:
            listed = await client.get(f"{url.group(1)}/_sandbox/incidents")
        assert len(listed.json()["value"]) == 3
    finally:
        process.terminate()
        await process.wait()
    assert process.returncode == 0
