"""The served OpenAPI document against the Warden serving it: every ``/api/`` route it mounts
is described, a webhook it does not mount is not, and the ITSM webhooks' real answers (signed
as ServiceNow and Jira sign them) match what the document says."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.jsm.webhook import IDENTIFIER_HEADER, SIGNATURE_HEADER, hub_signature
from core.settings.budgets import BudgetsSettings
from core.settings.jsm import JsmSettings
from core.settings.servicenow import ServiceNowSettings
from core.signing import sign
from sandbox.jsm import JsmSandbox
from sandbox.servicenow import ServiceNowSandbox
from tests.integration.conftest import Warden, WardenFactory
from tests.support import SECRET, assert_answer_described, channel_id, openapi_validator
from web.health import mounted_routes
from web.openapi import openapi_document

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

JIRA_SECRET = "jira-admin-webhook-secret"
NOT_DESCRIBED = {("POST", "/api/messages")}
"""Bot Framework's protocol (botbuilder): left out of the document on purpose."""
ITSM_PATHS = {"/api/webhooks/servicenow", "/api/webhooks/jsm"}


def _itsm(snow: ServiceNowSandbox, jsm: JsmSandbox, *, secrets: bool) -> dict[str, Any]:
    """Settings overrides connecting both ITSM systems, with or without webhook secrets."""
    return {
        "servicenow": ServiceNowSettings(
            instance_url=snow.url,
            username=snow.username,
            password=SecretStr(snow.password),
            webhook_secrets=[SecretStr(SECRET)] if secrets else [],
            poll_seconds=3600,
        ),
        "jsm": JsmSettings(
            base_url=jsm.url,
            email=jsm.email,
            api_token=SecretStr(jsm.api_token),
            webhook_secrets=[SecretStr(JIRA_SECRET)] if secrets else [],
            poll_seconds=3600,
        ),
    }


async def _every_webhook(
    start_warden: WardenFactory, snow: ServiceNowSandbox, jsm: JsmSandbox
) -> Warden:
    """A Warden serving every webhook it has: Sentinel, budgets, ServiceNow and JSM."""
    budgets = BudgetsSettings(
        webhook_tokens=[SecretStr("budget-token-" + "d" * 24)],
        operators_channel=channel_id("operators"),
    )
    return await start_warden(budgets=budgets, **_itsm(snow, jsm, secrets=True))


async def _document(warden: Warden) -> dict[str, Any]:
    response = await warden.client.get("/openapi.json")
    assert response.status == 200
    document: dict[str, Any] = await response.json()
    return document


async def test_every_api_route_mounted_is_described(
    start_warden: WardenFactory, snow: ServiceNowSandbox, jsm: JsmSandbox
) -> None:
    """With every webhook configured, each ``/api/`` route the app mounts (Bot Framework's
    aside) has its operation in the served document, which is then the whole document."""
    warden = await _every_webhook(start_warden, snow, jsm)
    document = await _document(warden)
    mounted = mounted_routes(warden.client.app)
    api = {
        (method, path) for method, path in mounted if path.startswith("/api/") and method != "HEAD"
    } - NOT_DESCRIBED
    assert {("POST", path) for path in ITSM_PATHS} <= api
    described = {(verb.upper(), path) for path, item in document["paths"].items() for verb in item}
    assert api - described == set(), "mounted but not in /openapi.json"
    assert document == openapi_document()


async def test_itsm_webhooks_absent_when_their_secrets_are_not_set(
    start_warden: WardenFactory, snow: ServiceNowSandbox, jsm: JsmSandbox
) -> None:
    """ServiceNow and JSM connected but without webhook secrets (and no budget token): their
    webhooks, and the budget webhook, are neither mounted nor in the document; the rest is."""
    warden = await start_warden(**_itsm(snow, jsm, secrets=False))
    document = await _document(warden)
    absent = ITSM_PATHS | {"/api/webhooks/budgets"}
    assert not {path for _, path in mounted_routes(warden.client.app)} & absent
    assert not set(document["paths"]) & absent
    assert {"/api/webhooks/sentinel", "/api/posture", "/healthz"} <= set(document["paths"])
    unsigned = await warden.client.post("/api/webhooks/servicenow", json={})
    assert unsigned.status == 404


async def test_servicenow_webhook_answers_match_the_document(
    start_warden: WardenFactory, snow: ServiceNowSandbox, jsm: JsmSandbox
) -> None:
    """A real record change signed as the business rule signs it: its body validates against
    the request schema and the 202 matches; a message without a record (400), a forged one
    (401) and a replay (401) also match."""
    warden = await _every_webhook(start_warden, snow, jsm)
    document = await _document(warden)
    operation = document["paths"]["/api/webhooks/servicenow"]["post"]
    request_schema = operation["requestBody"]["content"]["application/json"]["schema"]
    change = snow.create("change_request", {"short_description": "Rotate the VPN certificate"})
    message = {
        "table": "change_request",
        "sys_id": change["sys_id"],
        "operation": "update",
        "record": {
            "sys_id": change["sys_id"],
            "number": change["number"],
            "state": {"value": "-2", "display_value": "Scheduled"},
            "sys_updated_on": "2026-11-26 10:00:00",
        },
    }
    wrong = {"table": "cmdb_ci", "record": {}}
    validator = openapi_validator(document, request_schema)
    assert not [error.message for error in validator.iter_errors(message)]
    assert list(validator.iter_errors(wrong)), "the document accepts what the handler refuses"

    async def post(body: dict[str, Any], secret: str = SECRET, msg_id: str | None = None) -> Any:
        raw = json.dumps(body).encode()
        headers = {**sign(secret, raw, msg_id=msg_id), "content-type": "application/json"}
        return await warden.client.post("/api/webhooks/servicenow", data=raw, headers=headers)

    accepted = await post(message, msg_id="msg_openapi_1")
    assert accepted.status == 202, await accepted.text()
    assert (await accepted.json())["record"] == change["number"]
    refused = await post(wrong)
    assert refused.status == 400
    assert (await refused.json())["field"] == "table"
    forged = await post(message, secret="whsec_" + "Zm9yZ2VkLXNlY3JldC0xMjM0NTY3ODkw")
    replayed = await post(message, msg_id="msg_openapi_1")
    for response, status in ((accepted, 202), (refused, 400), (forged, 401), (replayed, 401)):
        assert response.status == status
        await assert_answer_described(document, operation, response)


async def test_jsm_webhook_answers_match_the_document(
    start_warden: WardenFactory, snow: ServiceNowSandbox, jsm: JsmSandbox
) -> None:
    """A Jira webhook signed as Jira signs it (``X-Hub-Signature``) about an existing issue
    is 202; a redelivery and an issue Jira does not have are 200; no issue key is 400; an
    unsigned delivery is 401: every answer matches the document."""
    warden = await _every_webhook(start_warden, snow, jsm)
    document = await _document(warden)
    operation = document["paths"]["/api/webhooks/jsm"]["post"]
    request_schema = operation["requestBody"]["content"]["application/json"]["schema"]
    issue = jsm.issue("SEC-4")
    body = {"webhookEvent": "jira:issue_updated", "timestamp": 1764151200000, "issue": issue}
    validator = openapi_validator(document, request_schema)
    assert not [error.message for error in validator.iter_errors(body)]
    assert list(validator.iter_errors({"issue": {"id": "10004"}}))

    async def post(body: dict[str, Any], delivery: str, *, signed: bool = True) -> Any:
        raw = json.dumps(body).encode()
        headers = {"content-type": "application/json", IDENTIFIER_HEADER: delivery}
        if signed:
            headers[SIGNATURE_HEADER] = hub_signature(JIRA_SECRET, raw)
        return await warden.client.post("/api/webhooks/jsm", data=raw, headers=headers)

    answers = [
        (await post(body, "delivery-1"), 202),
        (await post(body, "delivery-1"), 200),
        (await post({**body, "issue": {"key": "SEC-404"}}, "delivery-2"), 200),
        (await post({"webhookEvent": "jira:issue_updated"}, "delivery-3"), 400),
        (await post(body, "delivery-4", signed=False), 401),
    ]
    assert (await answers[0][0].json())["issue"] == "SEC-4"
    assert (await answers[1][0].json())["replayed"] is True
    for response, status in answers:
        assert response.status == status, await response.text()
        await assert_answer_described(document, operation, response)
