"""Contract tests: the real ``ServiceNowClient`` over HTTP against the ServiceNow sandbox.

The resilient httpx layer carries every call; the sandbox speaks the Table API of
``contracts/servicenow-table-api.yaml`` (strings everywhere, display values, ``Link``
paging, the error envelope, 429 with rate-limit headers, the invalid-query trap). After
each test, every request the client sent uses only the query parameters the description
declares for its operation, and the sandbox saw no answer that breaks the contract.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import SecretStr

from connectors.http import RetryPolicy, resilient_client
from connectors.servicenow.auth import BasicAuth, OAuthClientCredentials
from connectors.servicenow.client import ServiceNowClient
from connectors.servicenow.errors import ServiceNowRefused, ServiceNowThrottled
from connectors.servicenow.fields import Classification, FieldMapping
from core.breaker import Breakers
from core.errors import ItsmAmbiguous, ItsmRecordNotFound, Outcome
from core.itsm import ChangeDraft, ItsmRecord, RecordType, require_record
from core.models import IncidentStatus, Severity
from sandbox import servicenow_tables
from sandbox.servicenow import ServiceNowSandbox, run_servicenow_sandbox

CONTRACT = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "contracts" / "servicenow-table-api.yaml").read_text()
)
FAST = RetryPolicy(attempts=3, timeout=5.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)
CHG, INC = RecordType.CHANGE_REQUEST, RecordType.INCIDENT


def declared_query(operation_id: str) -> set[str]:
    """The query parameter names the description declares for an operation."""
    for item in CONTRACT["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                names = set()
                for parameter in operation.get("parameters", []):
                    name = parameter["$ref"].rsplit("/", 1)[1]
                    if CONTRACT["components"]["parameters"][name]["in"] == "query":
                        names.add(CONTRACT["components"]["parameters"][name]["name"])
                return names
    raise AssertionError(f"the client called an operation the description lacks: {operation_id}")


@pytest.fixture
async def snow() -> AsyncIterator[ServiceNowSandbox]:
    """The sandbox with its example data; afterwards, every request is checked."""
    async with run_servicenow_sandbox() as served:
        yield served
        assert served.contract_problems == []
        for entry in served.requests:
            if entry.operation.startswith("table_"):
                assert set(entry.query) <= declared_query(entry.operation), entry.summary()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The resilient httpx layer with fast retries."""
    async with resilient_client(breakers=Breakers(), policy=FAST) as made:
        yield made


@pytest.fixture
def client(snow: ServiceNowSandbox, http: httpx.AsyncClient) -> ServiceNowClient:
    """The client under test with basic auth, pointed at the sandbox."""
    return ServiceNowClient(http, snow.url, BasicAuth(snow.username, SecretStr(snow.password)))


def writes(snow: ServiceNowSandbox) -> list[str]:
    """The POSTs and PATCHes the sandbox received on tables, in order."""
    return [r.method for r in snow.requests if r.method in ("POST", "PATCH", "PUT")]


def correlated(snow: ServiceNowSandbox, table: str, correlation_id: str) -> list[dict[str, Any]]:
    """Every record of ``table`` carrying ``correlation_id``."""
    return [r for r in snow.records(table) if r.get("correlation_id") == correlation_id]


@pytest.fixture
def hidden_correlation_field(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An instance whose dictionary lacks ``correlation_id`` (a query on it is ignored)."""
    task = servicenow_tables.TABLES["task"]
    fields = tuple(f for f in task.fields if f != "correlation_id")
    monkeypatch.setitem(servicenow_tables.TABLES, "task", replace(task, fields=fields))
    yield


# Reading records.


async def test_get_seeded_change_returns_typed_record(
    snow: ServiceNowSandbox, client: ServiceNowClient
) -> None:
    """CHG0030001 comes back typed: state and its label, priority, url, updated at."""
    record = await client.get("chg0030001")
    stored = snow.find("change_request", "CHG0030001")
    assert record is not None and stored is not None
    assert (record.number, record.key, record.type) == ("CHG0030001", stored["sys_id"], CHG)
    assert (record.state, record.state_label) == ("-3", "Authorize")
    assert record.url == f"{snow.url}/change_request.do?sys_id={stored['sys_id']}"
    assert record.updated_at is not None and record.updated_at.tzinfo is not None
    link = record.link()
    assert (link.external_id, link.status, link.key) == ("CHG0030001", "Authorize", record.key)
    query = snow.requests[-1].query
    assert query["sysparm_query"] == "number=CHG0030001"
    assert {"sys_id", "number", "correlation_id"} <= set(query["sysparm_fields"].split(","))


async def test_get_unknown_number_none_and_require_raises_not_found(
    client: ServiceNowClient,
) -> None:
    """A number that does not exist is None; ``require_record`` says so to the user."""
    assert await client.get("CHG0039999") is None
    with pytest.raises(ItsmRecordNotFound) as caught:
        await require_record(client, "CHG0039999")
    assert caught.value.outcome is Outcome.GONE
    assert "No ServiceNow record CHG0039999 that Warden can read" in caught.value.user_message


async def test_get_unreadable_table_refused_with_access_message(
    snow: ServiceNowSandbox, client: ServiceNowClient
) -> None:
    """A 403 on the table (ACL) is a refusal naming access, not a missing record."""
    snow.deny_read("change_request")
    with pytest.raises(ServiceNowRefused) as caught:
        await client.get("CHG0030001")
    assert caught.value.status == 403
    assert "not allowed" in caught.value.user_message


async def test_get_ignored_query_answer_never_trusted(
    snow: ServiceNowSandbox, client: ServiceNowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the instance ignores ``number=`` and answers every record, get refuses it."""
    task = servicenow_tables.TABLES["task"]
    fields = tuple(f for f in task.fields if f != "number")
    monkeypatch.setitem(servicenow_tables.TABLES, "task", replace(task, fields=fields))
    with pytest.raises(ItsmAmbiguous, match="do not match"):
        await client.get("CHG0030001")


async def test_search_by_number_prefix_and_short_description(client: ServiceNowClient) -> None:
    """A number prefix finds by number; other text by short description, newest first."""
    by_number = await client.search("CHG003", types=[CHG, INC])
    assert {r.number for r in by_number} == {"CHG0030001", "CHG0030002"}
    by_text = await client.search("SQLDB", types=[CHG, INC])
    assert [r.number for r in by_text] == ["CHG0030002"]
    assert await client.search("disk full", types=[CHG]) == []
    assert [r.number for r in await client.search("disk full", types=[INC])] == ["INC0010002"]
    assert await client.search("a^ORactive=true", types=[CHG]) == []


# Exact writes.


async def test_create_change_twice_same_correlation_one_record(
    snow: ServiceNowSandbox, client: ServiceNowClient
) -> None:
    """Creating the change of one incident twice leaves one record, with its priority."""
    draft = ChangeDraft(
        correlation_id="sentinel:3177",
        short_description="Remediate Sentinel incident 3177",
        correlation_display="Sentinel incident 3177",
        impact=1,
        urgency=2,
    )
    first = await client.create_change(draft)
    second = await client.create_change(draft)
    assert first.key == second.key and first.number.startswith("CHG")
    assert (first.impact, first.urgency, first.priority) == (1, 2, 2)
    assert len(correlated(snow, "change_request", "sentinel:3177")) == 1
    assert writes(snow) == ["POST"]


async def test_upsert_none_creates_then_one_patches(
    snow: ServiceNowSandbox, client: ServiceNowClient
) -> None:
    """0 matching records → POST; then exactly 1 → PATCH of that record."""
    created = await client.upsert_by_correlation(
        CHG, "evidence:42", {"short_description": "Remediate storage encryption"}
    )
    updated = await client.upsert_by_correlation(CHG, "evidence:42", {"state": "-4"})
    assert updated.key == created.key and updated.state == "-4"
    assert writes(snow) == ["POST", "PATCH"]
    assert len(correlated(snow, "change_request", "evidence:42")) == 1


async def test_upsert_two_matching_records_ambiguous_nothing_written(
    snow: ServiceNowSandbox, client: ServiceNowClient
) -> None:
    """2 records with the correlation id → ItsmAmbiguous, and no write is sent."""
    for _ in range(2):
        snow.create("change_request", {"short_description": "dup", "correlation_id": "dup:1"})
    with pytest.raises(ItsmAmbiguous, match="several"):
        await client.upsert_by_correlation(CHG, "dup:1", {"state": "3"})
    assert writes(snow) == []


@pytest.mark.usefixtures("hidden_correlation_field")
async def test_upsert_ignored_query_answer_never_trusted(
    snow: ServiceNowSandbox, client: ServiceNowClient
) -> None:
    """An instance that ignores ``correlation_id=`` answers every record: nothing written."""
    with pytest.raises(ItsmAmbiguous, match="do not match"):
        await client.upsert_by_correlation(CHG, "sentinel:9", {"state": "3"})
    assert writes(snow) == []


async def test_upsert_failed_create_looks_up_again_before_resending(
    snow: ServiceNowSandbox, client: ServiceNowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A POST answered 503 is not resent blindly: the id is looked up, then one record made."""
    fail_request_number(snow, 2, monkeypatch)
    record = await client.upsert_by_correlation(CHG, "sentinel:503", {"short_description": "x"})
    assert [(r.method, r.status) for r in snow.requests] == [
        ("GET", 200),
        ("POST", 503),
        ("GET", 200),
        ("POST", 201),
    ]
    assert [r["sys_id"] for r in correlated(snow, "change_request", "sentinel:503")] == [record.key]


def fail_request_number(
    snow: ServiceNowSandbox, number: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Make the ``number``-th next request (and only it) answer 503 (``fail_next`` is FIFO)."""
    original = snow.take_failure
    seen = [0]

    def take_failure() -> Any:
        seen[0] += 1
        if seen[0] == number:
            snow.fail_next(1, 503)
        return original()

    monkeypatch.setattr(snow, "take_failure", take_failure)


async def test_work_note_and_closing_state_reach_the_record(
    snow: ServiceNowSandbox, client: ServiceNowClient
) -> None:
    """A work note is appended; closing as true positive sets state 3 and its close code."""
    record = await require_record(client, "CHG0030002")
    await client.add_work_note(record, "Closed in Teams by the SOC.")
    change = FieldMapping().to_record(
        CHG, IncidentStatus.CLOSED, Classification.TRUE_POSITIVE, note="patched"
    )
    closed = await client.update(record, change)
    assert closed.state == "3" and closed.close_code == "successful"
    notes = [n["value"] for n in snow.work_notes("change_request", record.key)]
    assert notes[-1] == "Closed in Teams by the SOC."
    stored = snow.record("change_request", record.key)
    assert stored is not None and stored["close_notes"].endswith(": patched")


async def test_severity_change_writes_impact_urgency_priority(client: ServiceNowClient) -> None:
    """A severity is written as its impact, urgency and the priority they give."""
    record = await require_record(client, "INC0010002")
    updated = await client.update(record, FieldMapping().severity_change(Severity.HIGH))
    assert (updated.impact, updated.urgency, updated.priority) == (1, 1, 1)


async def test_update_deleted_record_not_found(
    snow: ServiceNowSandbox, client: ServiceNowClient
) -> None:
    """A record deleted since it was read is reported not found (GONE)."""
    record = await require_record(client, "INC0010001")
    stored = snow.store.get("incident", record.key)
    assert stored is not None
    snow.store.delete(stored)
    with pytest.raises(ItsmRecordNotFound):
        await client.add_work_note(record, "too late")


# Polling.


async def test_changed_since_pages_by_link_with_overlap(
    snow: ServiceNowSandbox, http: httpx.AsyncClient
) -> None:
    """Records updated within the overlap before the watermark come back, 2 per page."""
    auth = BasicAuth(snow.username, SecretStr(snow.password))
    client = ServiceNowClient(http, snow.url, auth, overlap=timedelta(minutes=2), page_size=2)
    snow.advance_clock(3600)
    made = [snow.create("change_request", {"short_description": f"c{i}"}) for i in range(5)]
    watermark = snow.now() + timedelta(seconds=60)
    snow.clear_requests()
    found = [r async for r in client.changed_since(watermark, types=[CHG])]
    assert [r.key for r in found] == [m["sys_id"] for m in made]
    gets = snow.requests
    assert [g.query.get("sysparm_offset", "0") for g in gets] == ["0", "2", "4"]
    assert gets[0].query["sysparm_query"].endswith("^ORDERBYsys_updated_on")


async def test_changed_since_reopened_record_seen_again(
    snow: ServiceNowSandbox, client: ServiceNowClient
) -> None:
    """A resolved record reopened in ServiceNow after the watermark is read again."""
    stored = snow.find("incident", "INC0010002")
    assert stored is not None
    snow.portal_update("incident", stored["sys_id"], {"state": "6", "close_code": "Duplicate"})
    watermark = snow.now() + timedelta(hours=1)
    assert [r async for r in client.changed_since(watermark, types=[CHG, INC])] == []
    snow.advance_clock(7200)
    snow.portal_update("incident", stored["sys_id"], {"state": "2"})
    found: list[ItsmRecord] = [r async for r in client.changed_since(watermark, types=[CHG, INC])]
    assert [(r.number, r.state, r.updated_by) for r in found] == [("INC0010002", "2", "david.loo")]
    assert FieldMapping().from_record(INC, found[0].state).status is IncidentStatus.ACTIVE


# Throttling, outages and credentials.


async def test_rate_limited_get_waits_retry_after_then_succeeds(
    snow: ServiceNowSandbox, client: ServiceNowClient
) -> None:
    """A 429 with Retry-After: 1 is retried after about a second, and the read succeeds."""
    snow.fail_next(1, 429, retry_after=1)
    started = time.monotonic()
    assert await client.get("CHG0030001") is not None
    assert time.monotonic() - started >= 0.9
    assert [r.status for r in snow.requests] == [429, 200]


async def test_rate_limit_beyond_deadline_throttled_with_reset(
    snow: ServiceNowSandbox, client: ServiceNowClient
) -> None:
    """A rate-limit window longer than the deadline is not waited: RATE_LIMITED, its delay."""
    snow.rate_limit(1, window_seconds=600)
    await client.get("CHG0030001")
    with pytest.raises(ServiceNowThrottled) as caught:
        await client.get("CHG0030002")
    assert caught.value.outcome is Outcome.RATE_LIMITED
    assert caught.value.retry_after is not None and 590 <= caught.value.retry_after <= 600


async def test_unavailable_503_retried_then_succeeds(
    snow: ServiceNowSandbox, client: ServiceNowClient
) -> None:
    """Two 503s, then an answer: the read succeeds on the third attempt."""
    snow.fail_next(2, 503)
    assert await client.get("INC0010001") is not None
    assert [r.status for r in snow.requests] == [503, 503, 200]


async def test_oauth_token_reused_then_renewed_after_401(
    snow: ServiceNowSandbox, http: httpx.AsyncClient
) -> None:
    """One token serves many calls; when the instance expires it, one renewal follows."""
    auth = OAuthClientCredentials(http, snow.url, snow.client_id, SecretStr(snow.client_secret))
    client = ServiceNowClient(http, snow.url, auth)
    assert await client.get("CHG0030001") and await client.get("INC0010001")
    assert auth.fetched == 1
    snow.advance_clock(3600)
    assert await client.get("CHG0030002") is not None
    assert auth.fetched == 2
    statuses = [(r.operation, r.status) for r in snow.requests][-3:]
    assert [s for _, s in statuses] == [401, 200, 200]
    assert all(r.auth_scheme in (None, "Bearer") for r in snow.requests)


async def test_oauth_wrong_secret_refused(snow: ServiceNowSandbox, http: httpx.AsyncClient) -> None:
    """A client secret the instance refuses is a refusal, and no table call goes out."""
    auth = OAuthClientCredentials(http, snow.url, snow.client_id, SecretStr("wrong"))
    with pytest.raises(ServiceNowRefused, match="token refused"):
        await ServiceNowClient(http, snow.url, auth).get("CHG0030001")
    assert [r.path for r in snow.requests] == ["/oauth_token.do"]


async def test_basic_wrong_password_refused_once(
    snow: ServiceNowSandbox, http: httpx.AsyncClient
) -> None:
    """A wrong password is refused (401) once; basic auth has nothing to renew."""
    client = ServiceNowClient(http, snow.url, BasicAuth(snow.username, SecretStr("wrong")))
    with pytest.raises(ServiceNowRefused) as caught:
        await client.get("CHG0030001")
    assert caught.value.status == 401 and len(snow.requests) == 1


# CMDB.


async def test_configuration_items_by_name_fqdn_and_ip(client: ServiceNowClient) -> None:
    """Names, FQDNs and IP addresses find their CIs, mapped to Warden's CI contract."""
    items = await client.configuration_items(
        ["web-prd-01", "dc-prd-01.contoso.com", "10.20.2.40", "unknown-host", "a,b"]
    )
    by_name = {item.name: item for item in items}
    assert set(by_name) == {"web-prd-01", "dc-prd-01", "sqldb-finance"}
    web = by_name["web-prd-01"]
    assert (web.type, web.owner, web.env) == ("cmdb_ci_linux_server", "David Loo", "Production")
    assert web.last_seen_utc.tzinfo is not None
    assert await client.configuration_items(["a^ORname=x"]) == []
