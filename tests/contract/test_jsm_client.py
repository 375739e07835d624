"""Contract tests: the real ``JsmClient`` over HTTP against the JSM sandbox.

The resilient httpx layer carries every call; the sandbox speaks Jira's REST API (the
enhanced JQL search with ``nextPageToken``, transitions numbered per workflow, ADF comments,
the ``errorMessages`` envelope, 429 with ``Retry-After``). After each test, the client has
never called the retired offset search.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr

from connectors.http import RetryPolicy, resilient_client
from connectors.jsm.auth import ApiToken, OAuthClientCredentials
from connectors.jsm.client import JsmClient
from connectors.jsm.errors import JsmRefused, JsmThrottled
from core.breaker import Breakers
from core.errors import ItsmRecordNotFound, Outcome
from core.itsm import ChangeDraft, ItsmChange, RecordType, require_record
from sandbox.jsm import JsmSandbox, run_jsm_sandbox

FAST = RetryPolicy(attempts=3, timeout=5.0, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)
ALL = tuple(RecordType)


@pytest.fixture
async def jsm() -> AsyncIterator[JsmSandbox]:
    """The sandbox with its example requests; afterwards, no call used the retired search."""
    async with run_jsm_sandbox() as served:
        yield served
        assert not [r for r in served.requests if r.path == "/rest/api/3/search"]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The resilient httpx layer with fast retries."""
    async with resilient_client(breakers=Breakers(), policy=FAST) as made:
        yield made


@pytest.fixture
def client(jsm: JsmSandbox, http: httpx.AsyncClient) -> JsmClient:
    """The client under test with an API token, pointed at the sandbox."""
    return JsmClient(http, jsm.url, ApiToken(jsm.email, SecretStr(jsm.api_token)), page_size=2)


async def test_get_known_key_returns_typed_record(client: JsmClient, jsm: JsmSandbox) -> None:
    """A key in any case reads the issue: its id as key, type, status, priority and link."""
    record = await require_record(client, "sec-2")
    assert (record.number, record.key) == ("SEC-2", jsm.issue("SEC-2")["id"])
    assert record.type is RecordType.INCIDENT
    assert (record.state_label, record.priority) == ("Waiting for support", 1)
    assert record.url == f"{jsm.url}/browse/SEC-2"
    assert record.link().system.value == "jsm"
    sent = next(r for r in jsm.requests if r.path == "/rest/api/3/issue/SEC-2")
    assert sent.auth_scheme == "Basic" and "summary" in sent.query["fields"]


async def test_get_unknown_or_hidden_issue_returns_none(client: JsmClient, jsm: JsmSandbox) -> None:
    """An issue that does not exist, or one of a project the account cannot see, is None."""
    jsm.hidden_projects.add("OPS")
    assert await client.get("SEC-999") is None
    assert await client.get("OPS-1") is None
    with pytest.raises(ItsmRecordNotFound, match="SEC-999"):
        await require_record(client, "SEC-999")


async def test_search_jql_pages_follow_next_page_token(client: JsmClient, jsm: JsmSandbox) -> None:
    """Six SEC issues, two a page: three searches, the later ones carrying the token."""
    found = [r.number async for r in client.search_jql('project = "SEC" ORDER BY key ASC')]
    assert found == [f"SEC-{n}" for n in range(1, 7)]
    bodies = [r.body for r in jsm.requests if r.path == "/rest/api/3/search/jql"]
    assert len(bodies) == 3
    assert "nextPageToken" not in bodies[0]
    assert all(b["nextPageToken"] for b in bodies[1:])


async def test_search_jql_error_raised_with_service_message(client: JsmClient) -> None:
    """A JQL error is Jira's 400 with its words, raised and shown, never an empty result."""
    with pytest.raises(JsmRefused) as caught:
        _ = [r async for r in client.search_jql('project = "SEC" AND colour = "red"')]
    assert caught.value.status == 400 and caught.value.outcome is Outcome.FAIL
    assert "Field 'colour' does not exist" in caught.value.user_message


async def test_search_text_matches_summary_or_key(client: JsmClient) -> None:
    """Typeahead: a summary word finds the changes and incidents; a key finds that issue."""
    found = await client.search("certificate", types=(RecordType.CHANGE_REQUEST,))
    assert [r.number for r in found] == ["SEC-4"]
    assert [r.number for r in await client.search("sec-1", types=ALL)] == ["SEC-1"]
    assert await client.search('quote " inside', types=ALL) == []


async def test_transition_found_by_name_not_id(client: JsmClient, jsm: JsmSandbox) -> None:
    """ "Resolve" is id 13 on an incident and 103 on a change: each is found by its name."""
    incident, change = await client.get("SEC-2"), await client.get("SEC-1")
    assert incident is not None and change is not None
    assert await client.transition(incident, "Resolve")
    assert await client.transition(change, "resolve")
    sent = [r.body for r in jsm.requests if r.method == "POST" and r.path.endswith("transitions")]
    assert sent == [{"transition": {"id": "13"}}, {"transition": {"id": "103"}}]
    assert jsm.issue("SEC-2")["fields"]["status"]["name"] == "Resolved"
    assert not await client.transition(incident, "Resolved")  # there already: nothing sent


async def test_transition_unknown_name_refused_naming_open_ones(client: JsmClient) -> None:
    """A transition name the workflow lacks is refused, naming the ones open; nothing moves."""
    record = await client.get("SEC-3")
    assert record is not None
    with pytest.raises(JsmRefused, match=r"no transition named 'Done'.*Resolve"):
        await client.transition(record, "Done")
    assert (await client.get("SEC-3")).state_label == "Waiting for support"  # type: ignore[union-attr]


async def test_work_note_sent_as_internal_adf_comment(client: JsmClient, jsm: JsmSandbox) -> None:
    """A note is an ADF document, a paragraph per line, internal to agents."""
    record = await client.get("SEC-2")
    assert record is not None
    after = await client.update(
        record, ItsmChange(work_note="Closed in Sentinel\nby Ada", state="Cancel")
    )
    comment = jsm.comments("SEC-2")[-1]["body"]
    assert comment["type"] == "doc" and comment["version"] == 1
    texts = [p["content"][0]["text"] for p in comment["content"]]
    assert texts == ["Closed in Sentinel", "by Ada"]
    sent = next(r.body for r in jsm.requests if r.path.endswith("/comment"))
    assert sent["properties"] == [{"key": "sd.public.comment", "value": {"internal": True}}]
    assert after.state_label == "Canceled"


async def test_create_request_idempotent_by_label(client: JsmClient, jsm: JsmSandbox) -> None:
    """Creating twice for one incident makes one request in the service desk, labelled."""
    draft = ChangeDraft(correlation_id="inc-7f3a", short_description="Sentinel incident #7")
    first = await client.create_change(draft)
    again = await client.create_change(draft)
    assert first.number == again.number and first.correlation_id == "inc-7f3a"
    creates = [r.body for r in jsm.requests if r.path == "/rest/servicedeskapi/request"]
    assert len(creates) == 1
    assert creates[0]["serviceDeskId"] == "1" and creates[0]["requestTypeId"] == "10"
    assert jsm.issue(first.number)["fields"]["labels"] == ["warden-inc-7f3a"]


async def test_create_after_lost_answer_looks_up_before_resending(
    client: JsmClient, jsm: JsmSandbox
) -> None:
    """A create whose answer is lost is looked up again, found, and not sent again."""
    jsm.lose_answer_next("/rest/servicedeskapi/request")
    record = await client.create_change(ChangeDraft(correlation_id="c-1", short_description="x"))
    assert record.number == "SEC-7" and record.correlation_id == "c-1"
    assert sum(1 for r in jsm.requests if r.path == "/rest/servicedeskapi/request") == 1
    lookups = [r for r in jsm.requests if r.path == "/rest/api/3/search/jql"]
    assert len(lookups) == 2  # before the create, and after its answer was lost


async def test_throttled_call_raises_with_retry_after(client: JsmClient, jsm: JsmSandbox) -> None:
    """Past the rate limit: 429 retried by the transport, then raised with its delay."""
    jsm.rate_limit(1, window_seconds=60)
    await client.get("SEC-1")
    with pytest.raises(JsmThrottled) as caught:
        await client.get("SEC-1")
    assert caught.value.outcome is Outcome.RATE_LIMITED and caught.value.retry_after


async def test_changed_since_reads_overlap_oldest_first(client: JsmClient, jsm: JsmSandbox) -> None:
    """Issues updated within the overlap before the watermark are read again, oldest first."""
    jsm.advance_clock(3600)
    jsm.portal_update("SEC-3", status="In Progress")
    late = jsm.updated_at("SEC-3") - timedelta(seconds=60)
    jsm.advance_clock(30)
    jsm.portal_update("SEC-5", status="Waiting for support")
    watermark = jsm.updated_at("SEC-5")
    jsm.portal_update("SEC-3", status="Pending", updated=late)  # a late write, before the mark
    found = [r.number async for r in client.changed_since(watermark, types=ALL)]
    assert found == ["SEC-3", "SEC-5"]
    jql = next(r.body["jql"] for r in jsm.requests if r.path == "/rest/api/3/search/jql")
    assert "updated >=" in jql and "ORDER BY updated ASC" in jql


async def test_oauth_token_fetched_once_and_renewed_after_401(
    jsm: JsmSandbox, http: httpx.AsyncClient
) -> None:
    """OAuth 2.0 client credentials: one token for many calls; a revoked one is renewed."""
    auth = OAuthClientCredentials(
        http, f"{jsm.url}/oauth/token", jsm.client_id, SecretStr(jsm.client_secret)
    )
    client = JsmClient(http, jsm.url, auth)
    await client.get("SEC-1")
    await client.get("SEC-2")
    assert auth.fetched == 1
    jsm.tokens.clear()
    assert await client.get("SEC-3") is not None
    assert auth.fetched == 2
    assert {r.auth_scheme for r in jsm.requests if r.path.startswith("/rest/")} == {"Bearer"}
