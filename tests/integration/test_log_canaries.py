"""Rule 11 end to end: a whole journey with canary secrets and personal data, none logged."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from app import STORE, WORKER
from core.logs import configure_logging
from core.store import outbox
from sandbox.arm import run_arm_sandbox
from sandbox.sentinel_samples import updated_incident
from tests.integration.conftest import Warden, WardenFactory, incident
from tests.support import OTHER_SECRET, channel_id, invoke_activity, message_activity, signed

MARK = "q7zcanary"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(f"webhook-secret-{MARK}-0123456789".encode()).decode()
APP_PASSWORD = f"app-password-{MARK}~Xy9"
EMAIL = f"owner.{MARK}@contoso.com"
UPN = f"upn.{MARK}@contoso.onmicrosoft.com"
USER_NAME = f"Person {MARK.title()} Doe"
MESSAGE_TEXT = f"please look at the {MARK} server for me"
BEARER = f"opaque-bearer-{MARK}-token"
JWT = ".".join(
    base64.urlsafe_b64encode(part.encode()).decode().rstrip("=")
    for part in ('{"alg":"RS256","typ":"JWT"}', f'{{"sub":"{MARK}"}}', f"sig-{MARK}")
)
FORGED_SIGNATURE = "v1," + base64.b64encode(f"forged-signature-{MARK}".encode()).decode()
CANARIES = [
    MARK,
    WEBHOOK_SECRET,
    WEBHOOK_SECRET.removeprefix("whsec_"),
    APP_PASSWORD,
    EMAIL,
    UPN,
    USER_NAME,
    MESSAGE_TEXT,
    BEARER,
    JWT,
    FORGED_SIGNATURE,
]
# Every logger the journey touches, at DEBUG, so that nothing is hidden by its level, except
# the three configure_logging keeps at WARNING whatever the level because their DEBUG/INFO
# lines are row data by design (SQL echo, aiosqlite) or duplicate ours (aiohttp.access).
LOUD = (
    "aiohttp",
    "botbuilder",
    "botframework",
    "msrest",
    "urllib3",
    "asyncio",
    "alembic",
    "sqlalchemy",
    "httpx",
)
PINNED = ("aiohttp.access", "sqlalchemy.engine", "aiosqlite")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """All log output of the test, as JSON lines in memory; logging restored afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    levels = {name: logging.getLogger(name).level for name in (*LOUD, *PINNED)}
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    for name in LOUD:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _teams_message(warden: Warden, conversation: str, text: str) -> dict[str, Any]:
    activity = message_activity(warden.connector.url, conversation, text)
    activity["from"] = {"id": f"29:{MARK}", "name": USER_NAME, "aadObjectId": "a" * 8}
    return activity


async def _journey(warden: Warden) -> None:
    """Install, subscribe, two webhooks, a forgery, a bad signature, a probe, status."""
    conversation = channel_id("soc")
    await warden.install(conversation)
    for text in ("subscribe incidents", MESSAGE_TEXT, f"status {MARK}", "status"):
        answer = await warden.client.post(
            "/api/messages", json=_teams_message(warden, conversation, text)
        )
        assert answer.status in (200, 201), await answer.text()
    resource = incident()
    body, headers = signed(resource, secret=WEBHOOK_SECRET)
    headers["Authorization"] = f"Bearer {BEARER}"
    answer = await warden.client.post(
        f"/api/webhooks/sentinel?access_token={BEARER}", data=body, headers=headers
    )
    assert answer.status == 202, await answer.text()
    await warden.delivered(1)
    update = updated_incident(resource)
    update["properties"]["owner"].update(email=EMAIL, userPrincipalName=UPN, assignedTo=USER_NAME)
    body, headers = signed(update, secret=WEBHOOK_SECRET)
    assert (await warden.client.post("/api/webhooks/sentinel", data=body, headers=headers)).ok
    await warden.delivered(2)
    await _refusals(warden, update)


async def _refusals(warden: Warden, resource: dict[str, Any]) -> None:
    body, headers = signed(resource, secret=OTHER_SECRET)
    headers["Authorization"] = f"Bearer {JWT}"
    forged = await warden.client.post("/api/webhooks/sentinel", data=body, headers=headers)
    assert forged.status == 401
    body, headers = signed(resource, secret=WEBHOOK_SECRET)
    headers["webhook-signature"] = FORGED_SIGNATURE
    bad = await warden.client.post("/api/webhooks/sentinel", data=body, headers=headers)
    assert bad.status == 401
    probe = await warden.client.get(f"/users/{EMAIL}?client_secret={APP_PASSWORD}")
    assert probe.status == 404
    ready = await warden.client.get("/readyz", headers={"x-correlation-id": "journey-1"})
    assert ready.headers.get("x-correlation-id") == "journey-1"


async def test_journey_canary_secrets_and_personal_data_never_logged(
    start_warden: WardenFactory, captured: io.StringIO
) -> None:
    """No canary secret, token, signature, address, name or message text reaches a log line."""
    warden = await start_warden(
        sentinel_webhook_secrets=WEBHOOK_SECRET, microsoft_app_password=APP_PASSWORD
    )
    await _journey(warden)
    await warden.client.close()
    text = captured.getvalue()
    assert text.count('"logger": "warden.access"') == 11, "the journey was not captured"
    leaks = [canary for canary in CANARIES if canary.lower() in text.lower()]
    assert not leaks, f"canaries in the logs: {leaks}"


async def test_journey_access_lines_one_per_request_with_correlation(
    start_warden: WardenFactory, captured: io.StringIO
) -> None:
    """Every request leaves one JSON access line with its correlation id, status and duration."""
    warden = await start_warden(
        sentinel_webhook_secrets=WEBHOOK_SECRET, microsoft_app_password=APP_PASSWORD
    )
    await _journey(warden)
    lines = [json.loads(line) for line in captured.getvalue().split("\n") if line]
    access = [line for line in lines if line["logger"] == "warden.access"]
    assert len(access) == 11
    assert all(line["correlation_id"] and line["duration_ms"] >= 0 for line in access)
    assert len({line["correlation_id"] for line in access}) == len(access)
    assert access[-1]["correlation_id"] == "journey-1"
    assert [line["status"] for line in access].count(401) == 2
    assert access[-2]["path"].startswith("/users/user:") and access[-2]["status"] == 404
    assert all(line["remote"] is None or line["remote"].startswith("ip:") for line in access)


async def test_triage_journey_names_and_comments_never_logged(
    start_warden: WardenFactory, captured: io.StringIO
) -> None:
    """Triage with canary names and comment texts, both ways: none reaches a log line."""
    async with run_arm_sandbox() as arm:
        warden = await start_warden(
            arm_endpoint=arm.url,
            arm_ca_bundle=arm.ca_path,
            graph_endpoint=arm.graph_url,
            azure_tenant_id=arm.tenant_id,
            azure_client_id=arm.client_id,
            azure_client_secret=arm.client_secret,
            azure_authority_host=arm.authority,
            responder_group_ids=GROUP,
            sentinel_comments_seconds=0.2,
        )
        arm.set_member_groups(ACTOR["aadObjectId"], [GROUP])
        conversation = channel_id("soc")
        await warden.install(conversation)
        await warden.client.post(
            "/api/messages", json=_teams_message(warden, conversation, "subscribe incidents")
        )
        made = arm.create_incident({"title": "Canary", "severity": "High", "status": "New"})
        body, headers = signed(made)
        assert (await warden.client.post("/api/webhooks/sentinel", data=body, headers=headers)).ok
        await warden.delivered(1)
        key = str(made["id"]).lower()
        posted = warden.card_posts(conversation)[0]
        version = _version(posted.body)
        for verb, data in (
            ("incident.assign_me", {}),
            ("incident.comment", {"comment": MESSAGE_TEXT}),
        ):
            click = invoke_activity(
                warden.connector.url,
                conversation,
                verb,
                {"incident": key, "version": version, **data},
            )
            click["from"] = ACTOR
            assert (await warden.client.post("/api/messages", json=click)).status == 200
        reply = _teams_message(warden, conversation, f"thread {MESSAGE_TEXT}")
        reply["conversation"]["id"] = f"{conversation};messageid={posted.result_id}"
        reply["from"] = ACTOR
        assert (await warden.client.post("/api/messages", json=reply)).status in (200, 201)
        arm.portal_comment(made["name"], f"portal {MESSAGE_TEXT}", author=USER_NAME)
        await warden.connector.wait_for(
            lambda s: [r for r in s.posts() if f"portal {MESSAGE_TEXT}" in str(r.body)] or None,
            timeout=20,
        )

        async def settled() -> bool:
            return not await outbox.list_jobs(warden.client.app[STORE], outbox.UNFINISHED)

        await warden.client.app[WORKER].wait_until(settled)
        comments = [str(c["properties"]["message"]) for c in arm.comments(made["name"])]
        assert any(MESSAGE_TEXT in c and USER_NAME in c for c in comments)
        await warden.client.close()
    text = captured.getvalue()
    leaks = [canary for canary in CANARIES if canary.lower() in text.lower()]
    assert not leaks, f"canaries in the logs: {leaks}"


GROUP = "3c9e6f0a-8b1d-4f2a-9c3e-5d7b8a9f0e12"
ACTOR = {
    "id": f"29:{MARK}",
    "name": USER_NAME,
    "aadObjectId": "7d5c1f0e-2a3b-4c4d-8e9f-0a1b2c3d4e5f",
}


def _version(body: Any) -> str:
    """The version the triage buttons of a card activity carry."""
    for action in body["attachments"][0]["content"]["actions"]:
        if action.get("verb") == "incident.details":
            return str(action["data"]["version"])
    raise AssertionError("no triage buttons")
