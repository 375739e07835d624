"""ServiceNow and Jira Service Management connected to one Warden at once.

Warden runs with the ARM sandbox (Sentinel), the ServiceNow sandbox and the JSM sandbox;
links are made from chat, outcomes and creates go through the outbox, and every read and
write goes over HTTP through the real clients to the system the record lives in.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from pydantic import SecretStr

from cards.verbs import CardVerb
from core.itsm import ItsmSystem
from core.settings.itsm import ItsmSettings
from core.settings.jsm import JsmSettings
from core.settings.servicenow import ServiceNowSettings
from core.store import links as links_store
from sandbox.arm import ArmSandbox
from sandbox.jsm import JsmSandbox
from sandbox.servicenow import ServiceNowSandbox
from tests.integration.conftest import WardenFactory
from tests.integration.triage_support import Desk, open_desk
from tests.support import install_activity

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)

DATASET = "warden.itsm.records"


def _snow(snow: ServiceNowSandbox) -> ServiceNowSettings:
    return ServiceNowSettings(
        instance_url=snow.url, username=snow.username, password=SecretStr(snow.password)
    )


def _jsm(jsm: JsmSandbox) -> JsmSettings:
    return JsmSettings(
        base_url=jsm.url, email=jsm.email, api_token=SecretStr(jsm.api_token), poll_seconds=3600
    )


async def _both(
    start_warden: WardenFactory,
    arm: ArmSandbox,
    snow: ServiceNowSandbox,
    jsm: JsmSandbox,
    **more: Any,
) -> Desk:
    return await open_desk(start_warden, arm, servicenow=_snow(snow), jsm=_jsm(jsm), **more)


def _change(snow: ServiceNowSandbox) -> dict[str, str]:
    values = {"short_description": "Rotate the VPN gateway certificate", "state": "-4"}
    return snow.create("change_request", values)


async def _say(desk: Desk, text: str) -> str:
    return str(await desk.warden.say(desk.conversation, text))


def _number(desk: Desk) -> int:
    return int(desk.arm.incident(desk.name)["properties"]["incidentNumber"])


def _invoke(desk: Desk, name: str, value: dict[str, Any]) -> Any:
    """An invoke activity as Teams sends it from the desk's channel."""
    activity = install_activity(desk.warden.connector.url, desk.conversation)
    activity.pop("membersAdded")
    activity.update({"type": "invoke", "name": name, "id": f"f:{uuid.uuid4().hex}", "value": value})
    activity["channelData"].pop("eventType")
    return activity


async def _answer(desk: Desk, activity: Any) -> Any:
    response = await desk.warden.client.post("/api/messages", json=activity)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_one_incident_linked_to_both_systems_close_writes_each_its_own_way(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox, jsm: JsmSandbox
) -> None:
    """One incident linked to a CHG and to SEC-2: the card shows both; closing it writes a
    work note and the closed state to the change, and an internal ADF comment and the
    *Resolve* transition to the Jira issue."""
    desk = await _both(start_warden, arm, snow, jsm)
    change = _change(snow)
    answer = await _say(desk, f"link {_number(desk)} to {change['number']}")
    assert f"ServiceNow {change['number']}" in answer
    answer = await _say(desk, f"link {_number(desk)} to sec-2")
    assert "Jira Service Management SEC-2" in answer
    await desk.settled()
    card = str(desk.card())
    assert f"ServiceNow {change['number']}" in card and "Jira Service Management SEC-2" in card
    await desk.click(
        CardVerb.CLOSE,
        {"classification": "TruePositive:SuspiciousActivity", "comment": "Contained"},
        version=desk.version(),
    )
    await desk.settled()
    notes = [n["value"] for n in snow.work_notes("change_request", change["sys_id"])]
    assert any("Closed" in note and "via Teams" in note for note in notes)
    record = snow.record("change_request", change["sys_id"])
    assert record is not None and record["state"] == "3"
    assert jsm.issue("SEC-2")["fields"]["status"]["name"] == "Resolved"
    comment = jsm.comments("SEC-2")[-1]["body"]
    assert comment["type"] == "doc" and "Closed" in json.dumps(comment)
    stored = await links_store.links_of(desk.store, desk.key)
    assert sorted((s.link.system.value, s.link.status) for s in stored) == [
        ("jsm", "Resolved"),
        ("servicenow", "Closed"),
    ]


async def test_create_change_goes_to_the_default_system(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox, jsm: JsmSandbox
) -> None:
    """``WARDEN_ITSM__DEFAULT=jsm``: *Create change* says Jira, creates the request there
    (labelled with the incident's id) and links it; ServiceNow gets no change."""
    desk = await _both(start_warden, arm, snow, jsm, itsm=ItsmSettings(default=ItsmSystem.JSM))
    answer = await desk.click(CardVerb.CREATE_CHANGE)
    assert "Creating a change request in Jira Service Management" in str(answer)
    await desk.settled()
    [stored] = await links_store.links_of(desk.store, desk.key)
    assert stored.link.system is ItsmSystem.JSM
    issue = jsm.issue(stored.link.external_id)
    assert f"warden-{desk.name}".lower() in [label.lower() for label in issue["fields"]["labels"]]
    assert not [r for r in snow.records("change_request") if r.get("correlation_id") == desk.name]
    assert f"Jira Service Management {stored.link.external_id}" in str(desk.card())


async def test_jira_key_with_only_servicenow_connected_says_what_to_configure(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """``link <n> to SEC-12`` without JSM: refused naming JSM and its setting; nothing is
    stored, and a ServiceNow number still links."""
    desk = await open_desk(start_warden, arm, servicenow=_snow(snow))
    refused = await _say(desk, f"link {_number(desk)} to SEC-12")
    assert "SEC-12 is a Jira Service Management record" in refused
    assert "WARDEN_JSM__BASE_URL" in refused and "Nothing was linked" in refused
    assert await links_store.links_of(desk.store, desk.key) == []
    change = _change(snow)
    assert f"ServiceNow {change['number']}" in await _say(
        desk, f"link {_number(desk)} to {change['number']}"
    )


async def test_jira_issue_url_unfurls_to_the_record_card(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox, jsm: JsmSandbox
) -> None:
    """A pasted ``/browse/SEC-4`` link of the Jira site becomes the issue's card; a key Jira
    does not have, or another site, leaves the link plain."""
    desk = await _both(start_warden, arm, snow, jsm)
    url = f"{jsm.url}/browse/SEC-4"
    answer = await _answer(desk, _invoke(desk, "composeExtension/queryLink", {"url": url}))
    [attachment] = answer["composeExtension"]["attachments"]
    card = str(attachment["content"])
    assert "Jira Service Management SEC-4" in card and "Rotate the VPN gateway" in card
    assert "In Progress" in card
    assert attachment["preview"]["content"]["title"].startswith("SEC-4")
    for plain in (f"{jsm.url}/browse/SEC-404", "https://evil.example.com/browse/SEC-4"):
        answer = await _answer(desk, _invoke(desk, "composeExtension/queryLink", {"url": plain}))
        assert answer["composeExtension"]["attachments"] == []


async def test_search_returns_both_systems_records_labelled_by_system(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox, jsm: JsmSandbox
) -> None:
    """``application/search`` for words finds the ServiceNow change and the Jira issue (the
    JQL search), each title naming its system; a Jira key finds that issue only."""
    desk = await _both(start_warden, arm, snow, jsm)
    change = _change(snow)
    value = {"queryText": "vpn gateway", "dataset": DATASET, "queryOptions": {"skip": 0, "top": 15}}
    answer = await _answer(desk, _invoke(desk, "application/search", value))
    titles = {r["value"]: r["title"] for r in answer["value"]["results"]}
    assert "ServiceNow" in titles[change["number"]]
    assert "Jira Service Management" in titles["SEC-4"] and "Rotate the VPN" in titles["SEC-4"]
    assert any(r.path.endswith("/search/jql") for r in jsm.requests)
    keyed = {**value, "queryText": "SEC-4"}
    by_key = await _answer(desk, _invoke(desk, "application/search", keyed))
    assert [r["value"] for r in by_key["value"]["results"]] == ["SEC-4"]


async def test_link_to_incident_action_prefills_a_jira_key_and_links_it(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox, jsm: JsmSandbox
) -> None:
    """*Link to incident…* on a message naming SEC-4: the dialog asks for a record of either
    system with SEC-4 prefilled; submitting links the incident to the Jira issue."""
    desk = await _both(start_warden, arm, snow, jsm)
    value: dict[str, Any] = {
        "commandId": "linkToIncident",
        "commandContext": "message",
        "messagePayload": {"id": "1", "body": {"contentType": "html", "content": "<p>SEC-4</p>"}},
    }
    answer = await _answer(desk, _invoke(desk, "composeExtension/fetchTask", value))
    card = answer["task"]["value"]["card"]["content"]
    [box] = [item for item in card["body"] if item.get("id") == "record"]
    assert box["value"] == "SEC-4" and box["label"] == "ServiceNow number or Jira issue key"
    chosen = {**value, "data": {"incident": desk.key, "record": box["value"]}}
    done = await _answer(desk, _invoke(desk, "composeExtension/submitAction", chosen))
    assert "Jira Service Management SEC-4" in str(done)
    [stored] = await links_store.links_of(desk.store, desk.key)
    assert (stored.link.system, stored.link.external_id) == (ItsmSystem.JSM, "SEC-4")
