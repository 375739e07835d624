"""Contract tests: the Connector sandbox speaks the Bot Connector v3 wire format.

The real botbuilder ConnectorClient and raw httpx calls go over HTTP to the sandbox;
answers are checked against the swagger's declared response schemas.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from botbuilder.schema import Activity, Attachment, ChannelAccount, ConversationParameters
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import MicrosoftAppCredentials
from botframework.connector.models import ErrorResponseException
from jsonschema import Draft4Validator
from msrest.exceptions import ClientRequestError

from sandbox.connector import ConnectorSandbox, Fault, run_connector_sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = REPO_ROOT / "contracts"
SWAGGER = json.loads((CONTRACTS / "botframework-connector-v3.swagger.json").read_text())
DEFINITIONS = json.loads((CONTRACTS / "botframework-activity-v3.schema.json").read_text())[
    "definitions"
]
CHANNEL = "19:abc@thread.tacv2"
THREAD = "19:abc@thread.tacv2;messageid=1234"
CARD = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "body": [{"type": "TextBlock", "text": "Incident 42"}],
}
SEND = "/v3/conversations/{conversationId}/activities"
ACTIVITY = "/v3/conversations/{conversationId}/activities/{activityId}"
MEMBERS = "/v3/conversations/{conversationId}/members"
PAGED = "/v3/conversations/{conversationId}/pagedmembers"


def card_activity(text: str = "Incident 42") -> Activity:
    """An outgoing message carrying an adaptive card."""
    card = Attachment(content_type="application/vnd.microsoft.card.adaptive", content=CARD)
    return Activity(type="message", text=text, attachments=[card])


def path(template: str, conversation_id: str, activity_id: str = "") -> str:
    """Fill a swagger path template, percent-encoding ids like the SDK does."""
    return template.format(
        conversationId=quote(conversation_id, safe=""), activityId=quote(activity_id, safe="")
    ).lstrip("/")


def assert_swagger_answer(template: str, method: str, response: httpx.Response) -> None:
    """Assert the answer matches the schema the swagger declares for its status."""
    declared = SWAGGER["paths"][template][method.lower()]["responses"]
    status = str(response.status_code)
    if response.is_success:
        assert status in declared, f"{method} {template} may not answer {status}"
    schema = declared.get(status, declared.get("default", {})).get("schema")
    if schema is None:
        assert response.content == b""
        return
    Draft4Validator({**schema, "definitions": DEFINITIONS}).validate(response.json())
    if not response.is_success:
        error = response.json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)


@pytest.fixture
async def sandbox() -> AsyncIterator[ConnectorSandbox]:
    """A sandbox served on a free local port."""
    async with run_connector_sandbox() as served:
        yield served


@pytest.fixture
async def connector(sandbox: ConnectorSandbox) -> AsyncIterator[ConnectorClient]:
    """The real async botbuilder ConnectorClient, anonymous."""
    credentials = MicrosoftAppCredentials("", "")
    async with ConnectorClient(credentials, base_url=sandbox.url) as client:
        yield client


@pytest.fixture
async def http(sandbox: ConnectorSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """A raw HTTP client for the sandbox."""
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        yield client


async def test_send_to_conversation_adaptive_card_returns_teams_like_id(
    sandbox: ConnectorSandbox, connector: ConnectorClient
) -> None:
    """SendToConversation with a card answers a 13-digit id and stores the body as sent."""
    result = await connector.conversations.send_to_conversation(THREAD, card_activity())
    assert re.fullmatch(r"\d{13}", result.id)
    [entry] = sandbox.posts(THREAD)
    assert (
        entry.raw_path == "/v3/conversations/19%3Aabc%40thread.tacv2%3Bmessageid%3D1234/activities"
    )
    assert entry.status == 201 and entry.result_id == result.id
    stored = sandbox.activity(THREAD, result.id)
    assert stored["attachments"][0]["content"] == CARD
    assert stored["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"


async def test_update_activity_known_id_replaces_body(
    sandbox: ConnectorSandbox, connector: ConnectorClient
) -> None:
    """UpdateActivity (PUT) on a sent activity answers its id and stores the new body."""
    sent = await connector.conversations.send_to_conversation(THREAD, card_activity())
    updated = card_activity("Incident 42 (closed)")
    updated.id = sent.id
    result = await connector.conversations.update_activity(THREAD, sent.id, updated)
    assert result.id == sent.id
    assert sandbox.activity(THREAD, sent.id)["text"] == "Incident 42 (closed)"
    assert sandbox.activities(THREAD)[0].version == 2
    assert [e.status for e in sandbox.updates(THREAD, sent.id)] == [200]


async def test_reply_to_activity_any_parent_stores_reply(
    sandbox: ConnectorSandbox, connector: ConnectorClient
) -> None:
    """ReplyToActivity answers a new id and records the parent id from the URL."""
    result = await connector.conversations.reply_to_activity(CHANNEL, "1234", card_activity())
    [entry] = sandbox.posts(CHANNEL, successful=True)
    assert entry.operation == "ReplyToActivity" and entry.activity_id == "1234"
    assert sandbox.activities(CHANNEL)[0].reply_to_id == "1234"
    assert result.id == entry.result_id


async def test_update_activity_unknown_id_raises_404_activity_not_found(
    connector: ConnectorClient,
) -> None:
    """PUT of an id never sent raises ErrorResponseException carrying 404 ActivityNotFound."""
    await connector.conversations.send_to_conversation(THREAD, card_activity())
    with pytest.raises(ErrorResponseException) as caught:
        await connector.conversations.update_activity(THREAD, "1700000000000", card_activity())
    assert caught.value.response.status_code == 404
    assert caught.value.error.error.code == "ActivityNotFound"


async def test_send_to_conversation_after_removal_raises_403_not_in_roster(
    connector: ConnectorClient, http: httpx.AsyncClient
) -> None:
    """After the control API removes the bot, sends fail with 403 BotNotInConversationRoster."""
    removed = await http.post(f"_sandbox/conversations/{quote(CHANNEL, safe='')}/remove")
    assert removed.status_code == 204
    with pytest.raises(ErrorResponseException) as caught:
        await connector.conversations.send_to_conversation(THREAD, card_activity())
    assert caught.value.response.status_code == 403
    assert caught.value.error.error.code == "BotNotInConversationRoster"


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"type": "message", "text": 5}', "application/json", 400),
        (b'{"type": "message"}', "application/json", 400),
        (b'{"text": "no type"}', "application/json", 400),
        (b'{"type": "message", "text"', "application/json", 400),
        (b'{"type": "message", "text": "hi"}', "text/plain", 415),
    ],
)
async def test_send_to_conversation_invalid_body_returns_bad_argument(
    http: httpx.AsyncClient, content: bytes, content_type: str, status: int
) -> None:
    """Schema-invalid, empty, untyped, non-JSON or non-JSON-typed bodies get BadArgument."""
    response = await http.post(
        path(SEND, THREAD), content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == status
    assert response.json()["error"]["code"] == "BadArgument"
    assert_swagger_answer(SEND, "POST", response)


async def test_send_to_conversation_throttle_fault_returns_429_retry_after(
    http: httpx.AsyncClient,
) -> None:
    """A one-shot 429 fault added over the control API answers Retry-After, then clears."""
    added = await http.post("_sandbox/faults", json={"status": 429, "retry_after": 2})
    assert added.status_code == 201
    body = {"type": "message", "text": "hi"}
    throttled = await http.post(path(SEND, THREAD), json=body)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    assert throttled.json()["error"]["code"] == "Throttled"
    assert_swagger_answer(SEND, "POST", throttled)
    assert (await http.post(path(SEND, THREAD), json=body)).status_code == 201


async def test_send_to_conversation_drop_fault_raises_connection_error(
    sandbox: ConnectorSandbox, http: httpx.AsyncClient
) -> None:
    """A drop fault closes the connection without an answer; the log says so."""
    sandbox.add_fault(Fault(drop=True, path="/activities"))
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post(path(SEND, THREAD), json={"type": "message", "text": "hi"})
    [entry] = await sandbox.wait_for(lambda s: s.posts(THREAD))
    assert entry.status is None and entry.fault == "drop"


async def test_send_to_conversation_drop_after_fault_stores_then_cuts_the_answer(
    sandbox: ConnectorSandbox, http: httpx.AsyncClient
) -> None:
    """A drop_after fault stores the activity, then closes the connection unanswered: the
    sender sees the post fail, while the channel holds the message."""
    sandbox.add_fault(Fault(drop_after=True, path="/activities"))
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post(path(SEND, THREAD), json={"type": "message", "text": "hi"})
    [entry] = await sandbox.wait_for(lambda s: s.posts(THREAD))
    assert entry.status is None and entry.fault == "cut"
    assert [a.body.get("text") for a in sandbox.activities(THREAD)] == ["hi"]


def test_drop_after_fault_with_a_status_or_drop_refused() -> None:
    """drop_after answers nothing, so it cannot carry a status or drop before the work."""
    for fault in ({"drop_after": True, "status": 500}, {"drop_after": True, "drop": True}):
        with pytest.raises(ValueError, match="drop_after answers nothing"):
            Fault.from_json(fault)


async def test_send_to_conversation_delay_fault_answers_late(
    sandbox: ConnectorSandbox, connector: ConnectorClient
) -> None:
    """A delay-only fault slows the answer but still succeeds."""
    sandbox.add_fault(Fault(delay=0.3, method="POST"))
    started = time.monotonic()
    await connector.conversations.send_to_conversation(THREAD, card_activity())
    assert time.monotonic() - started >= 0.3
    assert sandbox.posts(THREAD)[0].fault == "delay"


async def test_sandbox_down_mode_answers_503_until_cleared(
    sandbox: ConnectorSandbox, http: httpx.AsyncClient
) -> None:
    """Down mode answers 503 ServiceError (with Retry-After) to every call until cleared."""
    mode = await http.put("_sandbox/mode", json={"down": True, "downRetryAfter": 5})
    assert mode.json()["down"] is True
    for _ in range(2):
        response = await http.get(path(MEMBERS, CHANNEL))
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert response.json()["error"]["code"] == "ServiceError"
    assert (await http.delete("_sandbox/faults")).status_code == 204
    assert (await http.get(path(MEMBERS, CHANNEL))).is_success


async def test_sandbox_answers_each_operation_match_swagger_schemas(
    http: httpx.AsyncClient,
) -> None:
    """Create, send, reply, update, members, paged members and delete answer as declared."""
    root = {"type": "message", "text": "root"}
    params = {"isGroup": True, "channelData": {"channel": {"id": CHANNEL}}, "activity": root}
    created = await http.post("v3/conversations", json=params)
    assert_swagger_answer("/v3/conversations", "POST", created)
    thread = created.json()["id"]
    assert thread == f"{CHANNEL};messageid={created.json()['activityId']}"
    body = {"type": "message", "text": "hi"}
    sent = await http.post(path(SEND, thread), json=body)
    assert_swagger_answer(SEND, "POST", sent)
    new_id = sent.json()["id"]
    calls = [
        ("POST", ACTIVITY, path(ACTIVITY, thread, new_id), body),
        ("PUT", ACTIVITY, path(ACTIVITY, thread, new_id), {**body, "text": "edited"}),
        ("PUT", ACTIVITY, path(ACTIVITY, thread, "404"), body),
        ("GET", MEMBERS, path(MEMBERS, thread), None),
        ("GET", PAGED, path(PAGED, thread), None),
        ("DELETE", ACTIVITY, path(ACTIVITY, thread, new_id), None),
        ("DELETE", ACTIVITY, path(ACTIVITY, thread, new_id), None),
    ]
    statuses = []
    for method, template, url, payload in calls:
        response = await http.request(method, url, json=payload)
        assert_swagger_answer(template, method, response)
        statuses.append(response.status_code)
    assert statuses == [201, 200, 404, 200, 200, 200, 404]


async def test_request_log_bearer_token_keeps_scheme_not_token(
    sandbox: ConnectorSandbox, http: httpx.AsyncClient
) -> None:
    """The log records that a bearer token came, and the traceparent, never the token."""
    headers = {
        "Authorization": "Bearer s3cr3t-t0ken",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }
    await http.post(path(SEND, THREAD), json={"type": "message", "text": "hi"}, headers=headers)
    log = (await http.get("_sandbox/requests")).json()["requests"]
    assert "s3cr3t" not in json.dumps(log) and "s3cr3t" not in repr(sandbox.requests)
    assert log[0]["authorization"] == {"present": True, "scheme": "Bearer"}
    assert log[0]["traceparent"] == headers["traceparent"]
    assert log[0]["conversationId"] == THREAD


async def test_require_auth_anonymous_connector_client_raises_401() -> None:
    """With require_auth, the anonymous SDK client (no Authorization header) gets 401."""
    async with (
        run_connector_sandbox(require_auth=True) as served,
        ConnectorClient(MicrosoftAppCredentials("", ""), base_url=served.url) as client,
    ):
        with pytest.raises(ErrorResponseException) as caught:
            await client.conversations.send_to_conversation(THREAD, card_activity())
        assert caught.value.response.status_code == 401
        assert served.requests[0].auth_present is False


async def test_rate_limiter_eighth_send_in_one_second_returns_429() -> None:
    """With rate limiting on, Teams' 7-per-second thread limit answers 429 + Retry-After."""
    frozen = ConnectorSandbox(rate_limit=True, clock=lambda: 1000.0)
    async with (
        run_connector_sandbox(sandbox=frozen) as served,
        httpx.AsyncClient(base_url=served.url) as http,
    ):
        body = {"type": "message", "text": "hi"}
        answers = [await http.post(path(SEND, THREAD), json=body) for _ in range(8)]
        assert [answer.status_code for answer in answers] == [201] * 7 + [429]
        assert answers[-1].headers["Retry-After"] == "1"
        throttled = served.posts(THREAD)[-1]
        assert throttled.fault == "rate_limit"
        other = await http.post(path(SEND, "a:1other"), json=body)
        assert other.status_code == 201


async def test_connector_client_put_503_retries_transparently(
    sandbox: ConnectorSandbox, connector: ConnectorClient
) -> None:
    """The stock async SDK (requests + urllib3 Retry) retries a PUT after 503 by itself."""
    sent = await connector.conversations.send_to_conversation(THREAD, card_activity())
    sandbox.add_fault(Fault(status=503, method="PUT"))
    await connector.conversations.update_activity(THREAD, sent.id, card_activity("again"))
    assert [e.status for e in sandbox.updates(THREAD)] == [503, 200]


async def test_connector_client_post_503_raises_without_retry(
    sandbox: ConnectorSandbox, connector: ConnectorClient
) -> None:
    """The async SDK does not retry a POST: a 503 surfaces as ErrorResponseException."""
    sandbox.add_fault(Fault(status=503, retry_after=1, method="POST"))
    with pytest.raises(ErrorResponseException) as caught:
        await connector.conversations.send_to_conversation(THREAD, card_activity())
    assert caught.value.response.status_code == 503
    assert caught.value.response.headers["Retry-After"] == "1"
    assert [e.status for e in sandbox.posts(THREAD)] == [503]


async def test_connector_client_post_drop_raises_client_request_error(
    sandbox: ConnectorSandbox, connector: ConnectorClient
) -> None:
    """A dropped connection surfaces from the SDK as msrest ClientRequestError."""
    sandbox.add_fault(Fault(drop=True))
    with pytest.raises(ClientRequestError):
        await connector.conversations.send_to_conversation(THREAD, card_activity())


async def test_create_conversation_personal_returns_service_url(
    sandbox: ConnectorSandbox, connector: ConnectorClient
) -> None:
    """CreateConversation for one member answers an a:1... id and the sandbox serviceUrl."""
    member = ChannelAccount(id="29:1user")
    params = ConversationParameters(is_group=False, members=[member], tenant_id="t")
    result = await connector.conversations.create_conversation(params)
    assert result.id.startswith("a:1") and result.service_url == sandbox.url


async def test_wait_for_concurrent_send_wakes_waiter(
    sandbox: ConnectorSandbox, connector: ConnectorClient
) -> None:
    """wait_for returns the predicate's value once a matching request is logged."""
    waiter = asyncio.create_task(sandbox.wait_for(lambda s: s.posts(THREAD), timeout=5))
    await connector.conversations.send_to_conversation(THREAD, card_activity())
    assert len(await waiter) == 1


async def test_wait_for_unmet_condition_raises_timeout_with_log(
    sandbox: ConnectorSandbox,
) -> None:
    """wait_for raises TimeoutError describing the log when nothing matches in time."""
    with pytest.raises(TimeoutError, match="0 request"):
        await sandbox.wait_for(lambda s: s.posts(THREAD), timeout=0.05)


async def test_control_faults_malformed_fault_returns_400(http: httpx.AsyncClient) -> None:
    """A fault with an unknown field or no effect is refused with BadArgument."""
    for fault in ({"status": 429, "bogus": 1}, {"times": 2}, {"status": "429"}):
        response = await http.post("_sandbox/faults", json=fault)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "BadArgument"


async def test_standalone_port_zero_logs_listening_url() -> None:
    """``python -m sandbox.connector --port 0`` logs its URL and serves the control API."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox.connector",
        "--port",
        "0",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        url = re.search(r"listening on (http://\S+)", line.decode())
        assert url is not None, line
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{url.group(1)}/_sandbox/mode")).json()["down"] is False
    finally:
        process.terminate()
        await process.wait()
    assert process.returncode == 0
