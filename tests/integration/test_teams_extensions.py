"""ServiceNow in Teams beyond cards: typeahead search, *Link to incident…*, link unfurling.

Warden runs with the ARM sandbox (Sentinel) and the ServiceNow sandbox behind it; each test
posts invoke activities shaped as Teams sends them to ``/api/messages`` and reads the
answers Teams would show. Links and lookups go over HTTP through the real clients.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import pytest
from pydantic import SecretStr

from core.settings.servicenow import ServiceNowSettings
from core.store import links as links_store
from sandbox.arm import ArmSandbox
from sandbox.servicenow import ServiceNowSandbox
from tests.integration.conftest import WardenFactory
from tests.integration.triage_support import Desk, open_desk
from tests.support import channel_id, install_activity

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)

DATASET = "warden.itsm.records"
COMMAND = "linkToIncident"


async def _desk(start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox) -> Desk:
    settings = ServiceNowSettings(
        instance_url=snow.url, username=snow.username, password=SecretStr(snow.password)
    )
    return await open_desk(start_warden, arm, servicenow=settings)


def _change(
    snow: ServiceNowSandbox, description: str = "Rotate the VPN gateway certificate"
) -> Any:
    return snow.create("change_request", {"short_description": description, "state": "-4"})


def _invoke(desk: Desk, name: str, value: dict[str, Any], conversation: str = "") -> Any:
    """An invoke activity as Teams sends it from a channel (``conversation`` or the desk's)."""
    activity = install_activity(desk.warden.connector.url, conversation or desk.conversation)
    activity.pop("membersAdded")
    activity.update({"type": "invoke", "name": name, "id": f"f:{uuid.uuid4().hex}", "value": value})
    activity["channelData"].pop("eventType")
    return activity


async def _answer(desk: Desk, activity: Any, status: int = 200) -> Any:
    response = await desk.warden.client.post("/api/messages", json=activity)
    assert response.status == status, await response.text()
    return await response.json()


async def _search(desk: Desk, text: str, **more: Any) -> Any:
    value = {"queryText": text, "dataset": DATASET, "queryOptions": {"skip": 0, "top": 15}}
    return await _answer(desk, _invoke(desk, "application/search", {**value, **more}))


def _message_action(content: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``value`` of a message extension action taken on a message saying ``content``."""
    value: dict[str, Any] = {
        "commandId": COMMAND,
        "commandContext": "message",
        "context": {"theme": "default"},
        "messagePayload": {
            "id": "1700000000123",
            "messageType": "message",
            "body": {"contentType": "html", "content": content},
            "from": {"user": {"id": "8:orgid:beth", "displayName": "Beth Anglin"}},
        },
    }
    if data is not None:
        value["data"] = data
    return value


def _inputs(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in card["body"] if str(item["type"]).startswith("Input.")}


async def test_typeahead_finds_records_by_number_prefix_and_by_words(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """``application/search``: a number's prefix and words of the short description both find
    the record, as ``{title, value}`` choices; a short query finds nothing; an unknown
    dataset is a 400 error response; a conversation without Warden gets no choices."""
    desk = await _desk(start_warden, arm, snow)
    change = _change(snow)
    by_number = await _search(desk, change["number"][:9])
    assert by_number["statusCode"] == 200
    assert by_number["type"] == "application/vnd.microsoft.search.searchResponse"
    values = [r["value"] for r in by_number["value"]["results"]]
    assert change["number"] in values and all(v.startswith(change["number"][:9]) for v in values)
    by_words = await _search(desk, "vpn gateway")
    titles = {r["value"]: r["title"] for r in by_words["value"]["results"]}
    assert change["number"] in titles and "Rotate the VPN gateway" in titles[change["number"]]
    assert (await _search(desk, "CH"))["value"]["results"] == []
    unknown = _invoke(desk, "application/search", {"queryText": "vpn", "dataset": "other"})
    error = await _answer(desk, unknown, status=400)
    assert error["statusCode"] == 400 and error["type"] == "application/vnd.microsoft.error"
    stranger = _invoke(
        desk, "application/search", {"queryText": "vpn gateway", "dataset": DATASET}, "19:x@t"
    )
    assert (await _answer(desk, stranger))["value"]["results"] == []


async def test_fetch_task_lists_incidents_here_newest_first_and_prefills_number(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """``composeExtension/fetchTask``: a dialog listing this channel's incidents (newest card
    first) with the CHG number found in the message prefilled; a conversation without
    incident cards says so."""
    desk = await _desk(start_warden, arm, snow)
    newer = arm.create_incident({"title": "Mass download", "severity": "Medium"})
    assert (await desk.warden.webhook(newer)).status == 202
    await desk.warden.connector.wait_for(
        lambda s: len(desk.warden.card_posts(desk.conversation)) >= 2 or None
    )
    await desk.settled()
    content = "<p>Handled under <b>chg0030077</b> &amp; tracked</p>"
    answer = await _answer(
        desk, _invoke(desk, "composeExtension/fetchTask", _message_action(content))
    )
    task = answer["task"]
    assert task["type"] == "continue" and task["value"]["title"] == "Link to incident"
    card = task["value"]["card"]["content"]
    inputs = _inputs(card)
    choices = inputs["incident"]["choices"]
    number = arm.incident(desk.name)["properties"]["incidentNumber"]
    assert [c["title"] for c in choices][1] == f"#{number} \u00b7 Suspicious sign-in"
    assert "Mass download" in choices[0]["title"] and choices[1]["value"] == desk.key
    assert inputs["record"]["value"] == "CHG0030077"
    other = channel_id("elsewhere")
    await desk.warden.install(other)
    empty = _invoke(desk, "composeExtension/fetchTask", _message_action("hi"), other)
    assert "No incident cards" in str(await _answer(desk, empty))


async def test_submit_action_links_and_the_card_shows_it(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """``composeExtension/submitAction``: the chosen incident is linked to the record; Teams
    shows a message saying so, and the incident's card shows the link once redrawn."""
    desk = await _desk(start_warden, arm, snow)
    change = _change(snow)
    data = {"incident": desk.key, "record": change["number"].lower()}
    activity = _invoke(desk, "composeExtension/submitAction", _message_action("x", data))
    answer = await _answer(desk, activity)
    result = answer["composeExtension"]
    assert result["type"] == "message"
    assert f"to ServiceNow {change['number']} (Assess)" in result["text"]
    await desk.settled()
    assert f"ServiceNow {change['number']}" in str(desk.card())
    again = await _answer(desk, activity)
    assert "already linked" in again["composeExtension"]["text"]


async def test_submit_action_unknown_record_or_incident_refused_nothing_linked(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """A record that does not exist, or an incident whose card is not here, brings the dialog
    back saying why; nothing is linked."""
    desk = await _desk(start_warden, arm, snow)
    unknown = {"incident": desk.key, "record": "CHG0099999"}
    activity = _invoke(desk, "composeExtension/submitAction", _message_action("x", unknown))
    answer = await _answer(desk, activity)
    assert answer["task"]["type"] == "continue"
    card = answer["task"]["value"]["card"]["content"]
    assert "No ServiceNow record CHG0099999 that Warden can read" in str(card)
    assert _inputs(card)["record"]["value"] == "CHG0099999"
    elsewhere = {"incident": "/subscriptions/x/incidents/none", "record": _change(snow)["number"]}
    activity = _invoke(desk, "composeExtension/submitAction", _message_action("x", elsewhere))
    assert "has no card in this conversation" in str(await _answer(desk, activity))
    assert await links_store.links_of(desk.store, desk.key) == []


async def test_query_link_unfurls_record_urls_of_the_instance_only(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """``composeExtension/queryLink``: a record URL of the instance (classic and framed forms)
    becomes a compact card with a preview; another host, or a record that does not exist,
    gives an empty result."""
    desk = await _desk(start_warden, arm, snow)
    change = _change(snow)
    classic = f"{snow.url}/change_request.do?sys_id={change['sys_id']}"
    framed = f"{snow.url}/nav_to.do?uri={quote('change_request.do?sys_id=' + change['sys_id'])}"
    for url in (classic, framed):
        answer = await _answer(desk, _invoke(desk, "composeExtension/queryLink", {"url": url}))
        result = answer["composeExtension"]
        assert result["type"] == "result" and result["attachmentLayout"] == "list"
        [attachment] = result["attachments"]
        card = str(attachment["content"])
        assert change["number"] in card and "Rotate the VPN gateway" in card and "Assess" in card
        assert attachment["preview"]["content"]["title"].startswith(change["number"])
    snow.clear_requests()
    for url in (
        f"https://evil.example.com/change_request.do?sys_id={change['sys_id']}",
        f"{snow.url}/change_request.do?sys_id={'0' * 32}",
    ):
        answer = await _answer(desk, _invoke(desk, "composeExtension/queryLink", {"url": url}))
        assert answer["composeExtension"]["attachments"] == []
    [read] = snow.requests  # the unknown sys_id was looked up; the other host never was
    assert read.table == "change_request" and "0" * 32 in str(read.query)


async def test_other_invokes_still_not_implemented(
    start_warden: WardenFactory, arm: ArmSandbox, snow: ServiceNowSandbox
) -> None:
    """An invoke Warden does not handle (a search command) is answered 501."""
    desk = await _desk(start_warden, arm, snow)
    activity = _invoke(desk, "composeExtension/query", {"commandId": "search"})
    response = await desk.warden.client.post("/api/messages", json=activity)
    assert response.status == 501
