"""Incidents linked to Jira Service Management from Teams, outcomes written there, changes back.

Warden is connected to the ARM sandbox (Sentinel) and the JSM sandbox (no ServiceNow); links
are made with the ``link`` command; every write goes through the real client over HTTP.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from cards.verbs import CardVerb
from connectors.jsm.auth import ApiToken
from connectors.jsm.client import JsmClient
from connectors.jsm.sync import JsmPoller
from connectors.jsm.webhook import hub_signature
from core.settings.jsm import JsmSettings
from core.store import links as links_store
from sandbox.arm import ArmSandbox
from sandbox.jsm import JsmSandbox
from tests.integration.conftest import WardenFactory
from tests.integration.triage_support import Desk, open_desk

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)

HOOK_SECRET = "jira-admin-webhook-secret"


async def _desk(start_warden: WardenFactory, arm: ArmSandbox, jsm: JsmSandbox, **more: Any) -> Desk:
    settings = JsmSettings(
        base_url=jsm.url,
        email=jsm.email,
        api_token=SecretStr(jsm.api_token),
        webhook_secrets=[SecretStr(HOOK_SECRET)],
        **more,
    )
    return await open_desk(start_warden, arm, jsm=settings)


def _number(desk: Desk) -> int:
    return int(desk.arm.incident(desk.name)["properties"]["incidentNumber"])


async def test_link_command_to_issue_key_shows_jsm_link_on_card(
    start_warden: WardenFactory, arm: ArmSandbox, jsm: JsmSandbox
) -> None:
    """``link <n> to SEC-4``: the answer and the card name the JSM issue and its status; an
    unknown key is refused with the reason and nothing is stored."""
    desk = await _desk(start_warden, arm, jsm, poll_seconds=3600)
    answer = str(await desk.warden.say(desk.conversation, f"link {_number(desk)} to sec-4"))
    assert "Jira Service Management SEC-4" in answer and "In Progress" in answer
    await desk.settled()
    assert "SEC-4" in str(desk.card())
    refused = str(await desk.warden.say(desk.conversation, f"link {_number(desk)} to SEC-404"))
    assert "No Jira Service Management record SEC-404" in refused
    stored = await links_store.links_of(desk.store, desk.key)
    assert [(s.link.system.value, s.link.external_id) for s in stored] == [("jsm", "SEC-4")]


async def test_close_from_card_comments_in_adf_and_transitions_by_name(
    start_warden: WardenFactory, arm: ArmSandbox, jsm: JsmSandbox
) -> None:
    """Closing the linked incident writes an internal ADF comment to the issue and moves it
    by the transition named for Closed ("Resolve")."""
    desk = await _desk(start_warden, arm, jsm, poll_seconds=3600)
    await desk.warden.say(desk.conversation, f"link {_number(desk)} to SEC-2")
    await desk.settled()
    await desk.click(
        CardVerb.CLOSE,
        {"classification": "TruePositive:SuspiciousActivity", "comment": "Contained"},
        version=desk.version(),
    )
    await desk.settled()
    assert jsm.issue("SEC-2")["fields"]["status"]["name"] == "Resolved"
    comment = jsm.comments("SEC-2")[-1]["body"]
    assert comment["type"] == "doc" and "Closed" in json.dumps(comment)
    moved = [r.body for r in jsm.requests if r.method == "POST" and r.path.endswith("transitions")]
    assert moved == [{"transition": {"id": "13"}}]


async def test_webhook_signed_changes_card_unsigned_and_replay_change_nothing(
    start_warden: WardenFactory, arm: ArmSandbox, jsm: JsmSandbox
) -> None:
    """A signed delivery brings the issue's state (read again from Jira) to the card; an
    unsigned one is 401; the same delivery id again changes nothing."""
    desk = await _desk(start_warden, arm, jsm, poll_seconds=3600)
    await desk.warden.say(desk.conversation, f"link {_number(desk)} to SEC-3")
    jsm.portal_update("SEC-3", status="Pending")
    body = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"key": "SEC-3"}}).encode()
    client: TestClient[web.Request, web.Application] = desk.warden.client
    plain = {"Content-Type": "application/json", "X-Atlassian-Webhook-Identifier": "d-1"}
    unsigned = await client.post("/api/webhooks/jsm", data=body, headers=plain)
    assert unsigned.status == 401
    forged = {**plain, "X-Hub-Signature": hub_signature("not-the-secret", body)}
    assert (await client.post("/api/webhooks/jsm", data=body, headers=forged)).status == 401
    signed = {**plain, "X-Hub-Signature": hub_signature(HOOK_SECRET, body)}
    first = await client.post("/api/webhooks/jsm", data=body, headers=signed)
    assert first.status == 202 and (await first.json())["cards"] == 1
    await desk.settled()
    assert "Pending" in str(desk.card())
    jsm.portal_update("SEC-3", status="In Progress")
    again = await client.post("/api/webhooks/jsm", data=body, headers=signed)
    assert again.status == 200 and (await again.json())["replayed"] is True
    garbled = b'{"issue": {"key": "\xff"}}'  # signed, but not UTF-8: not JSON, not a 500
    headers = {**plain, "X-Hub-Signature": hub_signature(HOOK_SECRET, garbled)}
    refused = await client.post("/api/webhooks/jsm", data=garbled, headers=headers)
    assert refused.status == 400 and (await refused.json())["title"] == "Not JSON"
    stored = await links_store.links_of(desk.store, desk.key)
    assert stored[0].link.status == "Pending"


async def test_poll_reads_late_write_within_overlap(
    start_warden: WardenFactory, arm: ArmSandbox, jsm: JsmSandbox
) -> None:
    """A change whose ``updated`` lands before the checkpoint (a late write) is still read:
    the poll reads again from the checkpoint less the overlap."""
    desk = await _desk(start_warden, arm, jsm, poll_seconds=3600, poll_overlap_seconds=300)
    await desk.warden.say(desk.conversation, f"link {_number(desk)} to SEC-6")
    async with httpx.AsyncClient() as http:
        client = JsmClient(
            http,
            jsm.url,
            ApiToken(jsm.email, SecretStr(jsm.api_token)),
            overlap=timedelta(seconds=300),
        )
        poller = JsmPoller(client, desk.store)
        jsm.advance_clock(120)
        jsm.portal_update("SEC-1", status="In Progress")
        assert await poller.poll_once() >= 1  # the checkpoint is now SEC-1's update
        late = jsm.updated_at("SEC-1") - timedelta(seconds=150)  # beyond JQL minute rounding
        jsm.portal_update("SEC-6", status="Canceled", updated=late)
        await poller.poll_once()
    stored = await links_store.links_of(desk.store, desk.key)
    assert stored[0].link.status == "Canceled"
