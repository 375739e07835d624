"""Contract tests: the ServiceNow sandbox speaks the Table API of servicenow-table-api.yaml.

httpx calls the sandbox over HTTP; every answer is checked against the schema the YAML
declares for its operation and status, with a validator built here from the contract
(not the sandbox's own). The business rule is received by a real aiohttp server and
verified with the standardwebhooks package.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web
from jsonschema import Draft7Validator
from standardwebhooks import Webhook

from sandbox.servicenow import ServiceNowSandbox, run_servicenow_sandbox

CONTRACT = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "contracts" / "servicenow-table-api.yaml").read_text()
)
TABLE = "/api/now/table"
DATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
SECRET = "whsec_" + base64.b64encode(b"sandbox-business-rule-secret").decode()


def _nullable(node: Any) -> Any:
    """Turn OpenAPI 3.0 ``nullable`` into JSON Schema types."""
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def assert_contract(operation_id: str, response: httpx.Response) -> None:
    """Assert the status is declared (errors: the envelope) and the body fits its schema."""
    operation = next(
        op
        for item in CONTRACT["paths"].values()
        for method, op in item.items()
        if method != "parameters" and op["operationId"] == operation_id
    )
    declared = operation["responses"].get(str(response.status_code))
    if declared is None:
        assert response.status_code >= 400, f"{operation_id} may not answer {response.status_code}"
        declared = {"$ref": "#/components/responses/Error"}
    if "$ref" in declared:
        declared = CONTRACT["components"]["responses"][declared["$ref"].rsplit("/", 1)[1]]
    content = declared.get("content")
    if content is None:
        assert response.content == b""
        return
    schema = {**content["application/json"]["schema"], "components": CONTRACT["components"]}
    Draft7Validator(_nullable(schema)).validate(response.json())


def all_strings(record: dict[str, Any]) -> bool:
    """Tell whether every value is a string or a reference object of strings."""
    return all(
        isinstance(v, str) or (isinstance(v, dict) and all(isinstance(x, str) for x in v.values()))
        for v in record.values()
    )


@pytest.fixture
async def snow() -> AsyncIterator[ServiceNowSandbox]:
    """A seeded sandbox on a free local port."""
    async with run_servicenow_sandbox() as served:
        yield served
        assert served.contract_problems == []


@pytest.fixture
async def http(snow: ServiceNowSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client with the sandbox's Basic credentials."""
    auth = httpx.BasicAuth(snow.username, snow.password)
    async with httpx.AsyncClient(base_url=snow.url, auth=auth) as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A real HTTP server collecting business-rule messages: (url, received)."""
    received: list[tuple[dict[str, str], bytes]] = []

    async def collect(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", collect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", received
    await runner.cleanup()


async def test_table_list_values_are_strings_dates_utc_and_references_link_objects(
    snow: ServiceNowSandbox, http: httpx.AsyncClient
) -> None:
    """Every field is a string; dates are YYYY-MM-DD HH:MM:SS; references are {link, value}."""
    response = await http.get(f"{TABLE}/change_request")
    assert_contract("table_List", response)
    records = response.json()["result"]
    assert records and all(all_strings(r) for r in records)
    first = records[0]
    assert DATE.match(first["sys_updated_on"]) and first["sys_mod_count"] == "0"
    assert first["state"] == "-3" and first["active"] == "true"
    group = first["assignment_group"]
    assert group["link"] == f"{snow.url}{TABLE}/sys_user_group/{group['value']}"
    plain = await http.get(
        f"{TABLE}/change_request", params={"sysparm_exclude_reference_link": "true"}
    )
    assert plain.json()["result"][0]["assignment_group"] == group["value"]


async def test_display_value_true_and_all_give_labels_and_referenced_names(
    http: httpx.AsyncClient,
) -> None:
    """display_value=true shows labels and names; all gives {display_value, value}."""
    query = {"sysparm_query": "number=CHG0030001", "sysparm_fields": "state,requested_by,number"}
    shown = await http.get(
        f"{TABLE}/change_request", params={**query, "sysparm_display_value": "true"}
    )
    assert_contract("table_List", shown)
    record = shown.json()["result"][0]
    assert record["state"] == "Authorize"
    assert record["requested_by"]["display_value"] == "David Loo"
    both = await http.get(
        f"{TABLE}/change_request", params={**query, "sysparm_display_value": "all"}
    )
    assert both.json()["result"][0]["state"] == {"display_value": "Authorize", "value": "-3"}
    assert set(both.json()["result"][0]) == {"state", "requested_by", "number"}


async def test_link_header_paging_over_250_records_returns_each_once(
    snow: ServiceNowSandbox, http: httpx.AsyncClient
) -> None:
    """Following rel="next" with sysparm_limit=100 yields 250 records in 3 pages."""
    made = {
        snow.create("incident", {"short_description": f"bulk {n}"})["sys_id"] for n in range(250)
    }
    url: str | None = (
        f"{TABLE}/incident?sysparm_query=short_descriptionSTARTSWITHbulk&sysparm_limit=100"
    )
    seen: list[str] = []
    pages = 0
    while url:
        response = await http.get(url)
        assert_contract("table_List", response)
        assert response.headers["X-Total-Count"] == "250"
        seen += [r["sys_id"] for r in response.json()["result"]]
        pages += 1
        links = dict(
            (rel, href)
            for href, rel in re.findall(r'<([^>]+)>;rel="(\w+)"', response.headers["Link"])
        )
        assert "sysparm_offset=200" in links["last"]
        url = links.get("next")
    assert pages == 3 and len(seen) == 250 and set(seen) == made


async def test_query_exact_number_matches_one_record(http: httpx.AsyncClient) -> None:
    """number=INC0010001 selects exactly that incident."""
    response = await http.get(f"{TABLE}/incident", params={"sysparm_query": "number=INC0010001"})
    assert [r["number"] for r in response.json()["result"]] == ["INC0010001"]


async def test_query_or_nq_and_orderbydesc_combine_like_the_platform(
    http: httpx.AsyncClient,
) -> None:
    """^OR, ^NQ and ORDERBYDESC select and sort as an instance does."""
    query = "state=1^ORstate=2^NQshort_descriptionLIKEdisk^ORDERBYDESCnumber"
    response = await http.get(f"{TABLE}/incident", params={"sysparm_query": query})
    assert [r["number"] for r in response.json()["result"]] == ["INC0010002", "INC0010001"]


async def test_query_unknown_field_is_ignored_and_returns_all_records(
    snow: ServiceNowSandbox, http: httpx.AsyncClient
) -> None:
    """A condition on a missing field is dropped: every record comes back (the trap)."""
    every = len(snow.records("change_request"))
    query = {"sysparm_query": "correlation_idd=sentinel:nothing"}
    response = await http.get(f"{TABLE}/change_request", params=query)
    assert len(response.json()["result"]) == every == 2
    snow.invalid_query_returns_no_rows = True
    strict = await http.get(f"{TABLE}/change_request", params=query)
    assert strict.json()["result"] == []


async def test_error_envelopes_for_401_403_404_400(
    snow: ServiceNowSandbox, http: httpx.AsyncClient
) -> None:
    """Wrong password 401, ACL 403, no record 404, bad JSON 400, all in the failure envelope."""
    wrong = await http.get(f"{TABLE}/incident", auth=(snow.username, "wrong"))
    assert wrong.status_code == 401
    assert_contract("table_List", wrong)
    snow.deny_read("incident")
    denied = await http.get(f"{TABLE}/incident")
    assert denied.status_code == 403 and denied.json()["status"] == "failure"
    assert_contract("table_List", denied)
    missing = await http.get(f"{TABLE}/change_request/{'0' * 32}")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "No Record found"
    assert_contract("table_Get", missing)
    bad = await http.post(f"{TABLE}/change_request", content=b"{not json")
    assert bad.status_code == 400
    assert_contract("table_Create", bad)


async def test_rate_limit_exceeded_returns_429_with_rate_limit_headers(
    snow: ServiceNowSandbox, http: httpx.AsyncClient
) -> None:
    """Beyond the rule's limit: 429 with X-RateLimit-* and Retry-After."""
    rule = snow.rate_limit(2, 60)
    for _ in range(2):
        ok = await http.get(f"{TABLE}/incident", params={"sysparm_limit": 1})
        assert ok.headers["X-RateLimit-Limit"] == "2"
    refused = await http.get(f"{TABLE}/incident")
    assert refused.status_code == 429
    assert_contract("table_List", refused)
    assert refused.headers["X-RateLimit-Rule"] == rule.rule_id
    assert int(refused.headers["X-RateLimit-Reset"]) >= int(snow.clock())
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


async def test_oauth_client_credentials_token_works_until_it_expires(
    snow: ServiceNowSandbox,
) -> None:
    """A token from /oauth_token.do is accepted as Bearer, and refused once expired."""
    async with httpx.AsyncClient(base_url=snow.url) as client:
        form = {"grant_type": "client_credentials", "client_id": snow.client_id}
        denied = await client.post("/oauth_token.do", data={**form, "client_secret": "nope"})
        assert denied.status_code == 401
        token = await client.post(
            "/oauth_token.do", data={**form, "client_secret": snow.client_secret}
        )
        body = token.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 1799
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        assert (await client.get(f"{TABLE}/incident", headers=bearer)).status_code == 200
        snow.advance_clock(1800)
        expired = await client.get(f"{TABLE}/incident", headers=bearer)
        assert expired.status_code == 401


async def test_patch_work_notes_appends_journal_and_read_returns_empty(
    snow: ServiceNowSandbox, http: httpx.AsyncClient
) -> None:
    """work_notes is write-append: the journal grows, the field reads "", mod count rises."""
    change = snow.find("change_request", "CHG0030002")
    assert change is not None
    url = f"{TABLE}/change_request/{change['sys_id']}"
    answer = await http.patch(url, json={"work_notes": "Approved in Teams", "approval": "approved"})
    assert_contract("table_Patch", answer)
    result = answer.json()["result"]
    assert result["work_notes"] == "" and result["sys_mod_count"] == "1"
    notes = snow.work_notes("change_request", change["sys_id"])
    assert [n["value"] for n in notes] == ["Approved in Teams"]
    assert notes[0]["sys_created_by"] == snow.username
    same = await http.put(url, json={"approval": "approved"})
    assert same.json()["result"]["sys_mod_count"] == "1"


async def test_business_rule_delivers_signed_message_after_api_insert(
    snow: ServiceNowSandbox,
    http: httpx.AsyncClient,
    receiver: tuple[str, list[tuple[dict[str, str], bytes]]],
) -> None:
    """A POST triggers a Standard Webhooks message the receiver can verify."""
    url, received = receiver
    snow.set_business_rule(url, SECRET)
    created = await http.post(f"{TABLE}/change_request", json={"short_description": "From Teams"})
    assert_contract("table_Create", created)
    await snow.wait_for(lambda s: s.rule_deliveries)
    assert snow.rule_deliveries[0].status == 204
    headers, body = received[0]
    message = Webhook(SECRET).verify(body, headers)
    assert message["operation"] == "insert" and message["table"] == "change_request"
    assert message["sys_id"] == created.json()["result"]["sys_id"]
    assert message["record"]["number"] == created.json()["result"]["number"]
    assert message["sys_updated_by"] == snow.username


async def test_portal_update_bumps_sys_updated_on_and_fires_rule(
    snow: ServiceNowSandbox, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    """A change made in ServiceNow moves sys_updated_on/by and sends an "update" message."""
    url, received = receiver
    snow.set_business_rule(url, SECRET)
    change = snow.find("change_request", "CHG0030001")
    assert change is not None
    snow.advance_clock(90)
    updated = snow.portal_update("change_request", change["sys_id"], {"state": "-2"})
    assert updated["sys_updated_on"] > change["sys_updated_on"]
    assert updated["sys_updated_by"] == "david.loo" and updated["sys_mod_count"] == "1"
    await snow.wait_for(lambda s: s.rule_deliveries)
    message = Webhook(SECRET).verify(received[0][1], received[0][0])
    assert message["operation"] == "update" and message["record"]["state"] == "-2"


async def test_fail_next_and_down_then_up(snow: ServiceNowSandbox, http: httpx.AsyncClient) -> None:
    """fail_next answers 503 + Retry-After once; down resets connections until up."""
    snow.fail_next(1, 503, retry_after=7)
    failed = await http.get(f"{TABLE}/incident")
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "7"
    assert (await http.get(f"{TABLE}/incident")).status_code == 200
    snow.down()
    with pytest.raises(httpx.TransportError):
        await http.get(f"{TABLE}/incident")
    snow.up()
    assert (await http.get(f"{TABLE}/incident")).status_code == 200


async def test_cmdb_ci_subclass_table_lists_only_its_class(http: httpx.AsyncClient) -> None:
    """cmdb_ci answers every CI; cmdb_ci_server only servers (and their subclasses)."""
    every = (await http.get(f"{TABLE}/cmdb_ci")).json()["result"]
    servers = (await http.get(f"{TABLE}/cmdb_ci_server")).json()["result"]
    assert len(every) == 6
    assert {s["sys_class_name"] for s in servers} == {"cmdb_ci_linux_server", "cmdb_ci_win_server"}


async def test_page_lists_changes_with_escaped_work_notes(
    snow: ServiceNowSandbox, http: httpx.AsyncClient
) -> None:
    """The HTML page shows numbers, state labels and work notes, escaped."""
    change = snow.find("change_request", "CHG0030001")
    assert change is not None
    snow.portal_update("change_request", change["sys_id"], {"work_notes": "<b>CAB</b> ok"})
    page = await http.get("/_sandbox/servicenow")
    assert "CHG0030001" in page.text and "Authorize" in page.text
    assert "&lt;b&gt;CAB&lt;/b&gt; ok" in page.text
