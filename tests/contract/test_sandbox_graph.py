"""Contract tests: the Graph sandbox speaks SharePoint's Graph wire format.

msgraph-sdk's ``GraphServiceClient``, built by Warden's own ``graph_client`` over httpx with
the real azure-identity credential against the ARM sandbox's token endpoint, drives the
sites, lists and items; raw httpx drives the byte-range rules of upload sessions, $batch
and the faults. Answers are checked against the schemas of
``contracts/msgraph-v1.0-subset.openapi.yaml`` and ``msgraph-v1.0-supplement.openapi.yaml``.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from azure.identity.aio import ClientSecretCredential
from jsonschema import Draft7Validator
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.column_definition import ColumnDefinition
from msgraph.generated.models.field_value_set import FieldValueSet
from msgraph.generated.models.list_ import List_
from msgraph.generated.models.list_info import ListInfo
from msgraph.generated.models.list_item import ListItem
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.text_column import TextColumn
from msgraph.generated.sites.item.lists.item.items.items_request_builder import (
    ItemsRequestBuilder,
)
from msgraph.graph_service_client import GraphServiceClient

from graph.client import graph_client
from sandbox.arm import ArmSandbox, run_arm_sandbox
from sandbox.graph import Fault, GraphSandbox, run_graph_sandbox
from sandbox.graph_store import Site

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
SUBSET = yaml.safe_load((CONTRACTS / "msgraph-v1.0-subset.openapi.yaml").read_text())
SUPPLEMENT = yaml.safe_load((CONTRACTS / "msgraph-v1.0-supplement.openapi.yaml").read_text())
HOST = "contoso.sharepoint.com"
UNIT = 320 * 1024
ROLES = ["Sites.ReadWrite.All", "GroupMember.Read.All", "ChannelMessage.Read.Group"]


def _openapi_to_jsonschema(node: Any) -> Any:
    """Turn OpenAPI 3.0 schema nodes into JSON Schema (``nullable``; open annotations).

    The generated Graph documents declare ``additionalProperties: {type: object}`` on
    entities, which would refuse Graph's own string annotations (``@odata.etag``); those
    are dropped, as the ARM contract tests do.
    """
    if isinstance(node, list):
        return [_openapi_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v) for k, v in node.items() if k != "nullable"}
    if node.get("additionalProperties") == {"type": "object"}:
        out.pop("additionalProperties")
    if node.get("nullable") and isinstance(node.get("type"), str):
        out["type"] = [node["type"], "null"]
    if node.get("format") in ("int32", "int64", "double", "float", "decimal"):
        out.pop("format", None)
    return out


SCHEMAS = {
    "subset": _openapi_to_jsonschema(SUBSET["components"]),
    "supplement": _openapi_to_jsonschema(SUPPLEMENT["components"]),
}


def assert_schema(name: str, body: object, document: str = "subset") -> None:
    """Assert a body matches a component schema of a Graph contract."""
    schema = {
        "$ref": f"#/components/schemas/{name}",
        "components": copy.deepcopy(SCHEMAS[document]),
    }
    Draft7Validator(schema).validate(body)


def assert_graph_error(response: httpx.Response, status: int, code: str) -> None:
    """Assert an OData error answer with this status and code (and innerError ids)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert_schema("ODataError", body, "supplement")
    assert body["error"]["code"] == code
    assert {"date", "request-id", "client-request-id"} <= set(body["error"]["innerError"])


@pytest.fixture
async def arm() -> AsyncIterator[ArmSandbox]:
    """The ARM sandbox (token endpoint, TLS CA) without incidents."""
    async with run_arm_sandbox(sandbox=ArmSandbox(seed_examples=False)) as served:
        yield served


@pytest.fixture
async def graph(arm: ArmSandbox, tmp_path: Path) -> AsyncIterator[GraphSandbox]:
    """The Graph sandbox, persisted under a temporary directory, with one site."""
    async with run_graph_sandbox(arm, state_dir=tmp_path / "graph") as served:
        served.add_site(HOST, "sites/Evidence")
        yield served


@pytest.fixture
def site(graph: GraphSandbox) -> Site:
    """The Evidence site."""
    return graph.sharepoint.site_by_path(HOST, "sites/Evidence")


@pytest.fixture
async def credential(arm: ArmSandbox) -> AsyncIterator[ClientSecretCredential]:
    """The real async credential of an app holding Sites.ReadWrite.All."""
    app = arm.register_client("warden-graph", graph_roles=ROLES)
    async with ClientSecretCredential(
        arm.tenant_id,
        app.client_id,
        app.secret,
        authority=arm.authority,
        connection_verify=str(arm.ca_path),
    ) as made:
        yield made


@pytest.fixture
async def http(
    arm: ArmSandbox, graph: GraphSandbox, credential: ClientSecretCredential
) -> AsyncIterator[httpx.AsyncClient]:
    """httpx trusting only the sandbox CA, with a Graph token, based at ``/v1.0``."""
    token = (await credential.get_token("https://graph.microsoft.com/.default")).token
    async with httpx.AsyncClient(
        base_url=graph.graph_url + "/",
        verify=arm.ssl_context(),
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client


@pytest.fixture
async def raw(arm: ArmSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """httpx trusting the sandbox CA, without any token (for uploadUrl and downloads)."""
    async with httpx.AsyncClient(verify=arm.ssl_context()) as client:
        yield client


@pytest.fixture
async def client(
    arm: ArmSandbox, graph: GraphSandbox, credential: ClientSecretCredential
) -> AsyncIterator[GraphServiceClient]:
    """Warden's GraphServiceClient pointed at the Graph sandbox."""
    async with httpx.AsyncClient(verify=arm.ssl_context()) as transport:
        yield graph_client(credential, transport, base_url=graph.graph_url)


async def make_list(client: GraphServiceClient, site: Site, template: str = "genericList") -> str:
    """Create an Evidence list with Status and Owner columns through the SDK; its id."""
    body = List_(
        display_name="Evidence Requests" if template == "genericList" else "Evidence Files",
        columns=[
            ColumnDefinition(name="Status", text=TextColumn()),
            ColumnDefinition(name="Owner", text=TextColumn()),
        ],
        list_=ListInfo(template=template),
    )
    made = await client.sites.by_site_id(site.id).lists.post(body)
    assert made is not None and made.id is not None
    return made.id


async def add_item(client: GraphServiceClient, site: Site, list_id: str, **fields: Any) -> ListItem:
    """Create a list item with these fields through the SDK."""
    item = ListItem(fields=FieldValueSet(additional_data=fields))
    made = await client.sites.by_site_id(site.id).lists.by_list_id(list_id).items.post(item)
    assert made is not None
    return made


# Sites.


async def test_site_by_path_and_by_id_answer_same_site(
    http: httpx.AsyncClient, client: GraphServiceClient, site: Site
) -> None:
    """A site addressed by host and path, or by its composite id, is the same site."""
    by_path = await http.get(f"sites/{HOST}:/sites/Evidence")
    assert by_path.status_code == 200
    assert_schema("microsoft.graph.site", by_path.json())
    assert by_path.json()["id"] == site.id and site.id.startswith(f"{HOST},")
    by_sdk = await client.sites.by_site_id(site.id).get()
    assert by_sdk is not None and by_sdk.web_url == f"https://{HOST}/sites/Evidence"
    by_sdk_path = await client.sites.by_site_id(f"{HOST}:/sites/Evidence:").get()
    assert by_sdk_path is not None and by_sdk_path.id == site.id


async def test_site_unknown_path_returns_item_not_found(http: httpx.AsyncClient) -> None:
    """An unknown site path gets Graph's 404 itemNotFound envelope."""
    assert_graph_error(await http.get(f"sites/{HOST}:/sites/Nope"), 404, "itemNotFound")


# Lists and columns.


async def test_list_create_via_sdk_returns_columns_and_template(
    http: httpx.AsyncClient, client: GraphServiceClient, site: Site
) -> None:
    """POST lists creates a genericList with its columns; GET lists and columns show it."""
    list_id = await make_list(client, site)
    listed = (await http.get(f"sites/{site.id}/lists")).json()
    assert_schema("microsoft.graph.listCollectionResponse", listed)
    [entry] = listed["value"]
    assert entry["id"] == list_id and entry["list"]["template"] == "genericList"
    columns = (await http.get(f"sites/{site.id}/lists/{list_id}/columns")).json()
    assert_schema("microsoft.graph.columnDefinitionCollectionResponse", columns)
    assert {"Title", "Status", "Owner"} <= {c["name"] for c in columns["value"]}


async def test_list_duplicate_name_returns_409_name_already_exists(
    http: httpx.AsyncClient, client: GraphServiceClient, site: Site
) -> None:
    """A second list with the same display name is refused with 409."""
    await make_list(client, site)
    body = {"displayName": "Evidence Requests", "list": {"template": "genericList"}}
    assert_graph_error(
        await http.post(f"sites/{site.id}/lists", json=body), 409, "nameAlreadyExists"
    )


async def test_column_add_then_item_with_unknown_field_returns_400(
    http: httpx.AsyncClient, client: GraphServiceClient, site: Site
) -> None:
    """A new column accepts values; an unknown field name is refused with 400."""
    list_id = await make_list(client, site)
    base = f"sites/{site.id}/lists/{list_id}"
    added = await http.post(f"{base}/columns", json={"name": "Hash", "text": {}})
    assert added.status_code == 201
    assert_schema("microsoft.graph.columnDefinition", added.json())
    ok = await http.post(f"{base}/items", json={"fields": {"Title": "a", "Hash": "ab12"}})
    assert ok.status_code == 201
    bad = await http.post(f"{base}/items", json={"fields": {"Nope": "x"}})
    assert_graph_error(bad, 400, "invalidRequest")


# Items, eTags, If-Match.


async def test_item_etag_changes_on_every_update(
    client: GraphServiceClient, site: Site, http: httpx.AsyncClient
) -> None:
    """Each PATCH of fields bumps the version in the eTag ``"{guid},{n}"``."""
    list_id = await make_list(client, site)
    made = await add_item(client, site, list_id, Title="INC-1", Status="Requested")
    assert made.e_tag is not None and made.e_tag.endswith(',1"') and made.e_tag.startswith('"')
    items = client.sites.by_site_id(site.id).lists.by_list_id(list_id).items
    await items.by_list_item_id(made.id or "").fields.patch(
        FieldValueSet(additional_data={"Status": "Collected"})
    )
    again = await items.by_list_item_id(made.id or "").get()
    assert again is not None and again.e_tag == made.e_tag.replace(',1"', ',2"')
    raw = (await http.get(f"sites/{site.id}/lists/{list_id}/items/{made.id}?$expand=fields")).json()
    assert_schema("microsoft.graph.listItem", raw)
    assert raw["fields"]["Status"] == "Collected" and raw["@odata.etag"] == raw["eTag"]


async def test_fields_patch_stale_if_match_returns_412_via_sdk(
    client: GraphServiceClient, site: Site, graph: GraphSandbox
) -> None:
    """PATCH fields with an outdated If-Match raises ODataError 412 and changes nothing."""
    list_id = await make_list(client, site)
    made = await add_item(client, site, list_id, Title="INC-2", Status="Requested")
    fields = (
        client.sites.by_site_id(site.id)
        .lists.by_list_id(list_id)
        .items.by_list_item_id(made.id or "")
        .fields
    )
    config: RequestConfiguration[Any] = RequestConfiguration()
    config.headers.add("If-Match", made.e_tag or "")
    answer = await fields.patch(FieldValueSet(additional_data={"Status": "Approved"}), config)
    assert answer is not None and answer.additional_data["Status"] == "Approved"
    with pytest.raises(ODataError) as raised:
        await fields.patch(FieldValueSet(additional_data={"Status": "Rejected"}), config)
    assert raised.value.response_status_code == 412
    assert raised.value.error is not None and raised.value.error.code == "resourceModified"
    stored = graph.sharepoint.site(site.id).lists[list_id].items[int(made.id or 0)]
    assert stored.fields["Status"] == "Approved"


async def test_items_top_pages_with_next_link_and_filter(
    client: GraphServiceClient, site: Site, http: httpx.AsyncClient
) -> None:
    """``$top`` pages with ``@odata.nextLink``; ``$filter`` on fields narrows the items."""
    list_id = await make_list(client, site)
    for number in range(5):
        await add_item(
            client, site, list_id, Title=f"E{number}", Status="Open" if number % 2 else "Done"
        )
    items = client.sites.by_site_id(site.id).lists.by_list_id(list_id).items
    query = ItemsRequestBuilder.ItemsRequestBuilderGetQueryParameters(expand=["fields"], top=2)
    page = await items.get(RequestConfiguration(query_parameters=query))
    titles: list[str] = []
    while page is not None:
        titles += [
            str((i.fields.additional_data if i.fields else {})["Title"]) for i in page.value or []
        ]
        if not page.odata_next_link:
            break
        page = await items.with_url(page.odata_next_link).get()
    assert titles == [f"E{n}" for n in range(5)]
    filtered = await http.get(
        f"sites/{site.id}/lists/{list_id}/items",
        params={"$expand": "fields", "$filter": "fields/Status eq 'Open'"},
    )
    assert_schema("microsoft.graph.listItemCollectionResponse", filtered.json())
    assert [i["fields"]["Title"] for i in filtered.json()["value"]] == ["E1", "E3"]


# Drives and files.


async def test_library_small_upload_by_path_creates_folders_and_downloads(
    client: GraphServiceClient, site: Site, http: httpx.AsyncClient, raw: httpx.AsyncClient
) -> None:
    """PUT root:/a/b/c.pdf:/content makes the folders, answers 201, then 200 on replace."""
    await make_list(client, site, "documentLibrary")
    drive = (await http.get(f"sites/{site.id}/drive")).json()
    assert_schema("microsoft.graph.drive", drive)
    url = f"drives/{drive['id']}/root:/INC-1/evidence/report.pdf:/content"
    created = await http.put(url, content=b"%PDF-1.7 first")
    assert created.status_code == 201
    assert_schema("microsoft.graph.driveItem", created.json())
    assert created.json()["parentReference"]["path"] == "/drive/root:/INC-1/evidence"
    replaced = await http.put(url, content=b"%PDF-1.7 second")
    assert replaced.status_code == 200 and replaced.json()["eTag"] != created.json()["eTag"]
    item_id = created.json()["id"]
    redirect = await http.get(f"drives/{drive['id']}/items/{item_id}/content")
    assert redirect.status_code == 302
    assert (await raw.get(redirect.headers["Location"])).content == b"%PDF-1.7 second"


async def test_sdk_upload_by_root_path_then_sdk_download_meets_302(
    client: GraphServiceClient, site: Site, graph: GraphSandbox
) -> None:
    """The SDK's ``items/root:/path:/content`` PUT creates the file; GET content is a 302."""
    await make_list(client, site, "documentLibrary")
    drive = await client.sites.by_site_id(site.id).drive.get()
    assert drive is not None and drive.id is not None
    items = client.drives.by_drive_id(drive.id).items
    made = await items.by_drive_item_id("root:/INC-7/log.txt:").content.put(b"evidence")
    assert made is not None and made.size == 8 and made.name == "log.txt"
    # Warden's httpx client follows no redirect, so the SDK gets no bytes from the 302.
    assert await items.by_drive_item_id(made.id or "").content.get() is None
    [download] = graph.calls("drives")[-1:]
    assert download.status == 302


async def test_file_list_item_fields_patch_honours_if_match(
    client: GraphServiceClient, site: Site, http: httpx.AsyncClient
) -> None:
    """A file's listItem fields can be set (200 fieldValueSet); a stale If-Match gets 412."""
    await make_list(client, site, "documentLibrary")
    drive_id = (await http.get(f"sites/{site.id}/drive")).json()["id"]
    parent = (await http.get(f"drives/{drive_id}/root")).json()["id"]
    made = await http.put(f"drives/{drive_id}/items/{parent}:/proof.txt:/content", content=b"x")
    base = f"drives/{drive_id}/items/{made.json()['id']}/listItem"
    item = (await http.get(base)).json()
    assert_schema("microsoft.graph.listItem", item)
    assert item["fields"]["FileLeafRef"] == "proof.txt"
    patched = await http.patch(
        f"{base}/fields", json={"Status": "Hashed"}, headers={"If-Match": item["eTag"]}
    )
    assert patched.status_code == 200 and patched.json()["Status"] == "Hashed"
    stale = await http.patch(
        f"{base}/fields", json={"Status": "x"}, headers={"If-Match": item["eTag"]}
    )
    assert_graph_error(stale, 412, "resourceModified")


async def _session(http: httpx.AsyncClient, site: Site, name: str) -> tuple[str, str]:
    """Create a library and an upload session for ``name``; (drive id, uploadUrl)."""
    drive_id = (await http.get(f"sites/{site.id}/drive")).json()["id"]
    answer = await http.post(f"drives/{drive_id}/root:/{name}:/createUploadSession", json={})
    assert answer.status_code == 200
    assert_schema("UploadSession", answer.json(), "supplement")
    assert answer.json()["nextExpectedRanges"] == ["0-"]
    return drive_id, answer.json()["uploadUrl"]


async def test_upload_session_large_file_in_ordered_chunks_is_stored_on_disk(
    client: GraphServiceClient,
    site: Site,
    http: httpx.AsyncClient,
    raw: httpx.AsyncClient,
    graph: GraphSandbox,
) -> None:
    """A 50 MB file in 10 MiB chunks: 202s with nextExpectedRanges, then 201 driveItem."""
    await make_list(client, site, "documentLibrary")
    drive_id, upload_url = await _session(http, site, "big/archive.bin")
    data = os.urandom(50 * 1000 * 1000)
    chunk = 32 * UNIT
    for start in range(0, len(data), chunk):
        part = data[start : start + chunk]
        end = start + len(part) - 1
        headers = {"Content-Range": f"bytes {start}-{end}/{len(data)}"}
        answer = await raw.put(upload_url, content=part, headers=headers)
        if end + 1 < len(data):
            assert answer.status_code == 202 and answer.json()["nextExpectedRanges"] == [
                f"{end + 1}-"
            ]
    assert answer.status_code == 201 and answer.json()["size"] == len(data)
    assert graph.files is not None
    stored = graph.files.path(drive_id, answer.json()["id"])
    assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(data).digest()


async def test_upload_session_refuses_gap_overlap_bad_size_and_token(
    client: GraphServiceClient, site: Site, http: httpx.AsyncClient, raw: httpx.AsyncClient
) -> None:
    """Gaps and overlaps get 416, a non-320-KiB fragment 400, a bearer token 401."""
    await make_list(client, site, "documentLibrary")
    _, upload_url = await _session(http, site, "x.bin")
    total = 3 * UNIT

    async def put(start: int, size: int, **headers: str) -> httpx.Response:
        """Send ``size`` bytes at ``start``."""
        content_range = {"Content-Range": f"bytes {start}-{start + size - 1}/{total}"}
        return await raw.put(upload_url, content=b"a" * size, headers={**content_range, **headers})

    assert_graph_error(await put(UNIT, UNIT), 416, "invalidRange")
    assert_graph_error(await put(0, 1000), 400, "invalidRequest")
    assert_graph_error(await put(0, UNIT, Authorization="Bearer x"), 401, "unauthenticated")
    assert (await put(0, UNIT)).status_code == 202
    assert_graph_error(await put(0, UNIT), 416, "invalidRange")
    assert (await raw.get(upload_url)).json()["nextExpectedRanges"] == [f"{UNIT}-"]
    assert (await put(UNIT, 2 * UNIT)).status_code == 201
    assert_graph_error(await put(0, UNIT), 404, "itemNotFound")


async def test_upload_session_on_existing_file_replaces_with_200_and_fail_gives_409(
    client: GraphServiceClient, site: Site, http: httpx.AsyncClient, raw: httpx.AsyncClient
) -> None:
    """A session for an existing name ends with 200 (replaced); conflictBehavior=fail is 409."""
    await make_list(client, site, "documentLibrary")
    drive_id, upload_url = await _session(http, site, "same.txt")
    first = await raw.put(upload_url, content=b"one", headers={"Content-Range": "bytes 0-2/3"})
    assert first.status_code == 201
    _, again_url = await _session(http, site, "same.txt")
    second = await raw.put(again_url, content=b"two!", headers={"Content-Range": "bytes 0-3/4"})
    assert second.status_code == 200 and second.json()["id"] == first.json()["id"]
    assert second.json()["size"] == 4
    fail = {"item": {"@microsoft.graph.conflictBehavior": "fail"}}
    refused = await http.post(f"drives/{drive_id}/root:/same.txt:/createUploadSession", json=fail)
    assert_graph_error(refused, 409, "nameAlreadyExists")


# $batch.


async def test_batch_runs_requests_with_depends_on_and_failed_dependency(
    client: GraphServiceClient, site: Site, http: httpx.AsyncClient
) -> None:
    """$batch answers each request; one depending on a failed request gets 424."""
    list_id = await make_list(client, site)
    items = f"/sites/{site.id}/lists/{list_id}/items"
    json_header = {"Content-Type": "application/json"}
    body = {
        "requests": [
            {
                "id": "1",
                "method": "POST",
                "url": items,
                "headers": json_header,
                "body": {"fields": {"Title": "a"}},
            },
            {"id": "2", "method": "GET", "url": f"{items}/1?$expand=fields", "dependsOn": ["1"]},
            {"id": "3", "method": "GET", "url": f"{items}/99"},
            {"id": "4", "method": "GET", "url": items, "dependsOn": ["3"]},
        ]
    }
    answer = await http.post("$batch", json=body)
    assert answer.status_code == 200
    assert_schema("BatchResponse", answer.json(), "supplement")
    status = {r["id"]: r["status"] for r in answer.json()["responses"]}
    assert status == {"1": 201, "2": 200, "3": 404, "4": 424}


async def test_batch_over_twenty_or_duplicate_ids_returns_400(http: httpx.AsyncClient) -> None:
    """More than 20 requests, or a repeated id, fails the whole batch with 400."""
    many = [{"id": str(n), "method": "GET", "url": "/sites/x"} for n in range(21)]
    assert_graph_error(await http.post("$batch", json={"requests": many}), 400, "BadRequest")
    twice = [{"id": "a", "method": "GET", "url": "/x"}, {"id": "A", "method": "GET", "url": "/y"}]
    assert_graph_error(await http.post("$batch", json={"requests": twice}), 400, "BadRequest")


# Auth, faults, control, persistence.


async def test_graph_token_without_sites_role_returns_403_access_denied(
    arm: ArmSandbox, graph: GraphSandbox, raw: httpx.AsyncClient, site: Site
) -> None:
    """A Graph token without a Sites role is refused; an ARM token gets 401."""
    arm.register_client("reader", "s3cret", graph_roles=["User.Read.All"])
    no_role = arm.issue_token("https://graph.microsoft.com", client_id="reader")
    url = f"{graph.graph_url}/sites/{site.id}/lists"
    denied = await raw.post(url, json={}, headers={"Authorization": f"Bearer {no_role}"})
    assert_graph_error(denied, 403, "accessDenied")
    arm_token = arm.issue_token()
    wrong = await raw.get(url, headers={"Authorization": f"Bearer {arm_token}"})
    assert_graph_error(wrong, 401, "InvalidAuthenticationToken")


async def test_throttle_fault_returns_429_retry_after_also_inside_batch(
    graph: GraphSandbox, http: httpx.AsyncClient, site: Site
) -> None:
    """A queued 429 fault answers with Retry-After, directly and as an inner batch answer."""
    graph.add_fault(Fault(status=429, retry_after=7, path="/lists", times=2))
    direct = await http.get(f"sites/{site.id}/lists")
    assert_graph_error(direct, 429, "TooManyRequests")
    assert direct.headers["Retry-After"] == "7"
    batch = await http.post(
        "$batch",
        json={"requests": [{"id": "1", "method": "GET", "url": f"/sites/{site.id}/lists"}]},
    )
    [inner] = batch.json()["responses"]
    assert batch.status_code == 200 and inner["status"] == 429
    assert inner["headers"]["Retry-After"] == "7"


async def test_down_mode_answers_503_with_retry_after_until_switched_off(
    graph: GraphSandbox, http: httpx.AsyncClient, raw: httpx.AsyncClient, site: Site
) -> None:
    """PUT /_sandbox/mode down=true makes every Graph call 503 serviceNotAvailable."""
    mode = {"down": True, "downRetryAfter": 4}
    assert (await raw.put(f"{graph.url}/_sandbox/mode", json=mode)).status_code == 200
    down = await http.get(f"sites/{site.id}")
    assert_graph_error(down, 503, "serviceNotAvailable")
    assert down.headers["Retry-After"] == "4"
    await raw.put(f"{graph.url}/_sandbox/mode", json={"down": False})
    assert (await http.get(f"sites/{site.id}")).status_code == 200


async def test_control_api_state_page_and_persistence_across_restart(
    arm: ArmSandbox,
    graph: GraphSandbox,
    client: GraphServiceClient,
    site: Site,
    http: httpx.AsyncClient,
    raw: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    """The control API shows state and the log; a new server on the same directory keeps it."""
    list_id = await make_list(client, site)
    await add_item(client, site, list_id, Title="<b>INC-9</b>", Status="Open")
    state = (await raw.get(f"{graph.url}/_sandbox/state")).json()
    assert state["sites"][0]["lists"][0]["items"][0]["fields"]["Title"] == "<b>INC-9</b>"
    page = await raw.get(f"{graph.url}/_sandbox/sharepoint")
    assert page.status_code == 200 and "&lt;b&gt;INC-9&lt;/b&gt;" in page.text
    log = (await raw.get(f"{graph.url}/_sandbox/requests")).json()["requests"]
    assert any(entry["operation"] == "sites" and entry["status"] == 201 for entry in log)
    assert all("Bearer" not in str(entry["body"]) for entry in log)
    async with run_graph_sandbox(arm, state_dir=tmp_path / "graph") as again:
        restored = again.sharepoint.site_by_path(HOST, "sites/Evidence")
        assert restored.id == site.id
        assert restored.lists[list_id].items[1].fields["Status"] == "Open"


async def test_check_member_groups_is_served_on_the_same_graph_base_url(
    arm: ArmSandbox, http: httpx.AsyncClient
) -> None:
    """checkMemberGroups (the ARM sandbox's directory) answers on the Graph sandbox too."""
    user = arm.add_user("Adele Vance", "adele@contoso.com")
    arm.set_member_groups(user.object_id, ["g1"])
    answer = await http.post(
        f"users/{user.object_id}/checkMemberGroups", json={"groupIds": ["g1", "g2"]}
    )
    assert answer.status_code == 200 and answer.json()["value"] == ["g1"]
