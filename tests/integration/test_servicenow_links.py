"""Incidents linked to ServiceNow from Teams, outcomes written there, its changes brought back.

Warden is connected to the ARM sandbox (Sentinel) and the ServiceNow sandbox (Table API, its
business rule calling Warden's webhook); links are made with the ``link`` command and the
card's buttons; every write goes through the real clients over HTTP.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

from cards.verbs import CardVerb
from connectors.servicenow.mapping import record_from_json
from core.itsm import RecordType
from core.settings.servicenow import ServiceNowSettings
from core.store import links as links_store
from sandbox.arm import ArmSandbox
from sandbox.servicenow import ServiceNowSandbox
from tests.integration.conftest import WardenFactory
from tests.integration.triage_support import Desk, open_desk
from tests.support import USER

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)

HOOK_SECRET = "whsec_" + "c2VydmljZW5vdy1zYW5kYm94LXdlYmhvb2stc2VjcmV0"


def _snow_settings(snow: ServiceNowSandbox, **more: Any) -> ServiceNowSettings:
    return ServiceNowSettings(
        instance_url=snow.url,
        username=snow.username,
        password=SecretStr(snow.password),
        webhook_secrets=[SecretStr(HOOK_SECRET)],
        **more,
    )


async def _linked_desk(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox, **more: Any
) -> Desk:
    return await open_desk(start_warden, arm, servicenow=_snow_settings(snow, **more))


def _change(snow: ServiceNowSandbox, **fields: str) -> dict[str, str]:
    values = {"short_description": "Rotate the VPN gateway certificate", "state": "-4", **fields}
    return snow.create("change_request", values)


async def _say(desk: Desk, text: str) -> str:
    """What Warden answered ``@Warden <text>`` with, as text."""
    return str(await desk.warden.say(desk.conversation, text))


def _number(desk: Desk) -> int:
    return int(desk.arm.incident(desk.name)["properties"]["incidentNumber"])


async def test_link_command_shows_link_on_card_and_tells_sentinel(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """``link <n> to CHG…``: the answer names the record and its state; every card shows the
    link; Sentinel gets a comment naming who linked it, and a label."""
    desk = await _linked_desk(start_warden, arm, snow)
    change = _change(snow)
    answer = await _say(desk, f"link {_number(desk)} to {change['number']}")
    assert f"Linked #{_number(desk)} to ServiceNow {change['number']}" in answer
    assert "Assess" in answer
    await desk.settled()
    card = str(desk.card())
    assert f"ServiceNow {change['number']}" in card and "Assess" in card
    assert any(
        f"Linked to ServiceNow {change['number']}" in c and USER["name"] in c
        for c in desk.comments()
    )
    labels = [label["labelName"] for label in desk.properties()["labels"]]
    assert f"ServiceNow:{change['number']}" in labels
    again = await _say(desk, f"link {_number(desk)} to {change['number']}")
    assert "already linked" in again


async def test_link_unknown_or_unreadable_record_refused_nothing_stored(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """A record that does not exist, or that Warden's account cannot read, is refused with
    the reason; nothing is linked."""
    desk = await _linked_desk(start_warden, arm, snow)
    answer = await _say(desk, f"link {_number(desk)} to CHG0099999")
    assert "No ServiceNow record CHG0099999 that Warden can read" in answer
    change = _change(snow)
    snow.deny_read("change_request")
    answer = await _say(desk, f"link {_number(desk)} to {change['number']}")
    assert "Nothing was linked" in answer
    missing = await _say(desk, f"link 9999 to {change['number']}")
    assert "No incident #9999 here" in missing
    assert await links_store.links_of(desk.store, desk.key) == []


async def test_unlink_removes_link_from_card(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """``unlink``: the cards drop the link; Sentinel is told; unlinking again says so."""
    desk = await _linked_desk(start_warden, arm, snow)
    change = _change(snow)
    await _say(desk, f"link {_number(desk)} to {change['number']}")
    await desk.settled()
    answer = await _say(desk, f"unlink {_number(desk)} from {change['number']}")
    assert f"Unlinked #{_number(desk)}" in answer
    await desk.settled()
    assert "Linked records" not in str(desk.card())
    assert any(f"Unlinked from ServiceNow {change['number']}" in c for c in desk.comments())
    again = await _say(desk, f"unlink {_number(desk)} from {change['number']}")
    assert "is not linked" in again


async def test_card_link_button_links_and_redraws(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """*Link to ServiceNow…* on the card: the answered card shows the link at once; a bad
    number is refused on the card."""
    desk = await _linked_desk(start_warden, arm, snow)
    change = _change(snow)
    bad = await desk.click(CardVerb.LINK, {"record": "not a number"})
    assert "give a record number" in str(bad)
    answer = await desk.click(CardVerb.LINK, {"record": change["number"].lower()})
    assert f"Linked to ServiceNow {change['number']}" in str(answer)
    assert f"ServiceNow {change['number']}" in str(answer)


async def test_create_change_from_card_creates_once_and_links(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """*Create change*: a change request titled after the incident, its priority from the
    severity and its correlation id the incident's; linked, and shown on the card. Asked
    twice, one change exists."""
    desk = await _linked_desk(start_warden, arm, snow)
    answer = await desk.click(CardVerb.CREATE_CHANGE)
    assert "Creating a change request" in str(answer)
    await desk.click(CardVerb.CREATE_CHANGE)
    await desk.settled()
    made = [r for r in snow.records("change_request") if r.get("correlation_id") == desk.name]
    assert len(made) == 1
    assert made[0]["priority"] == "1" and "Suspicious sign-in" in made[0]["short_description"]
    assert f"ServiceNow {made[0]['number']}" in str(desk.card())
    refused = await desk.click(CardVerb.CREATE_CHANGE)
    assert f"linked to change {made[0]['number']} already" in str(refused)


async def test_close_from_card_writes_work_notes_and_state_in_order(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """Severity then closure on the card, while ServiceNow is down: both reach the linked
    change when it is back, in order, as work notes naming the responder, and the change
    ends closed."""
    desk = await _linked_desk(start_warden, arm, snow)
    change = _change(snow)
    await _say(desk, f"link {_number(desk)} to {change['number']}")
    await desk.settled()
    snow.down()
    await desk.click(CardVerb.SEVERITY, {"severity": "Medium"})
    await desk.click(
        CardVerb.CLOSE,
        {"classification": "TruePositive:SuspiciousActivity", "comment": "Contained"},
        version=desk.version(),
    )
    snow.up()
    await desk.settled()
    notes = [n["value"] for n in snow.work_notes("change_request", change["sys_id"])]
    ours = [n for n in notes if "via Teams" in n]
    assert len(ours) == 2
    assert "Severity High \u2192 Medium" in ours[0] and USER["name"] in ours[0]
    assert "Closed" in ours[1]
    record = snow.record("change_request", change["sys_id"])
    assert record is not None and record["state"] == "3"
    assert "Closed" in str(desk.card())
    echo = record_from_json(record, RecordType.CHANGE_REQUEST, snow.url)
    assert await links_store.record_changed(desk.store, echo) == [], "Warden's write echoed"


async def test_webhook_change_in_servicenow_reaches_card_at_once(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """A change made in ServiceNow reaches the card through the business rule's webhook;
    an unsigned or replayed message is refused and changes nothing."""
    desk = await _linked_desk(start_warden, arm, snow, poll_seconds=3600)
    change = await _scheduled_in_servicenow(desk, snow)
    client: TestClient[web.Request, web.Application] = desk.warden.client
    await desk.settled()
    assert "Scheduled" in str(desk.card())
    body = b'{"table": "change_request", "sys_id": "x", "record": {}}'
    unsigned = await client.post(
        "/api/webhooks/servicenow", data=body, headers={"Content-Type": "application/json"}
    )
    assert unsigned.status == 401
    message = (
        b'{"table": "change_request", "sys_id": "%s", "record": {"sys_id": "%s", '
        b'"number": "%s", "state": "0", "sys_updated_on": "2026-11-26 10:00:00"}}'
        % (change["sys_id"].encode(), change["sys_id"].encode(), change["number"].encode())
    )
    headers = _signed(message)
    first = await client.post("/api/webhooks/servicenow", data=message, headers=headers)
    assert first.status == 202
    replayed = await client.post("/api/webhooks/servicenow", data=message, headers=headers)
    assert replayed.status == 401


async def test_poll_brings_back_a_reopened_record_without_webhook(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """Without the webhook, the poller finds a record changed since its checkpoint (a closed
    change reopened) within its interval; the card shows it."""
    desk = await _linked_desk(start_warden, arm, snow, poll_seconds=0.2)
    change = _change(snow, state="3")
    await _say(desk, f"link {_number(desk)} to {change['number']}")
    await desk.settled()
    snow.advance_clock(5)
    snow.portal_update("change_request", change["sys_id"], {"state": "-1"})

    def reopened(sandbox: Any) -> bool:
        return "Implement" in str(desk.card())

    await desk.warden.connector.wait_for(reopened, timeout=15)


async def test_webhook_and_poll_together_update_each_card_once(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """With the business rule on and a 0.2 s poll, a change made in ServiceNow reaches the
    card; over the poll rounds after it, the second path to bring it changes nothing: the
    connector receives exactly one card update with the new state."""
    desk = await _linked_desk(start_warden, arm, snow, poll_seconds=0.2)
    await _scheduled_in_servicenow(desk, snow)

    def scheduled(sandbox: Any) -> bool:
        return "Scheduled" in str(desk.card())

    await desk.warden.connector.wait_for(scheduled, timeout=15)
    seen = len(snow.requests)

    def polled(sandbox: ServiceNowSandbox, rounds: int = 3) -> bool:
        reads = [
            r
            for r in sandbox.requests[seen:]
            if r.method == "GET"
            and r.table == "change_request"
            and r.ok
            and "sys_updated_on>=" in r.query.get("sysparm_query", "")
        ]
        return len(reads) >= rounds  # round n's records are stored before round n + 1 reads

    await snow.wait_for(polled, timeout=15)
    await desk.settled()
    updates = [
        r
        for r in desk.warden.connector.updates(desk.conversation, successful=True)
        if desk.key in str(r.body) and "Scheduled" in str(r.body)
    ]
    assert len(updates) == 1


async def _scheduled_in_servicenow(desk: Desk, snow: ServiceNowSandbox) -> dict[str, str]:
    """Link a change to the incident, turn the business rule on, and schedule the change as
    a person in ServiceNow would; returns the change once the rule delivered it."""
    change = _change(snow)
    await _say(desk, f"link {_number(desk)} to {change['number']}")
    await desk.settled()
    client: TestClient[web.Request, web.Application] = desk.warden.client
    snow.set_business_rule(str(client.make_url("/api/webhooks/servicenow")), HOOK_SECRET)
    snow.portal_update("change_request", change["sys_id"], {"state": "-2"})
    await snow.wait_for(lambda s: [d for d in s.rule_deliveries if d.status == 202] or None)
    return change


def _signed(body: bytes) -> dict[str, str]:
    """Standard Webhooks headers for ``body``, signed with the webhook secret."""
    import time
    from datetime import UTC, datetime

    webhook_id = f"msg_{secrets.token_hex(8)}"
    now = datetime.fromtimestamp(time.time(), UTC)
    signature = Webhook(HOOK_SECRET).sign(webhook_id, now, body.decode())
    return {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
